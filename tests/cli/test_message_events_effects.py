"""Provider events change what mcrm sends next: after `mcrm import message-events --preset
sendgrid` of a real-shaped webhook batch about messages mcrm sent, a plan made later skips the
user who unsubscribed (no_consent) and the address that hard-bounced (no_address), and the
import summary counts those effects."""

from __future__ import annotations

import datetime as dt
import json

from mcrm.db import open_db
from tests.cli.test_send_exactly_once import AS_OF, CAMPAIGN, make, plan
from tests.conftest import Cli, WorkspaceFactory

LATER = "2026-03-09T09:00:00Z"


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


def test_unsubscribe_and_bounce_exclude_from_the_next_plan(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w = make(workspace, 4)
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    with open_db(w.ws) as con:
        keys = dict(con.execute("SELECT user_id, idempotency_key FROM outbox").fetchall())
    t = epoch("2026-03-02T10:00:00")

    def ev(user: str, event: str, n: int, **extra: object) -> dict[str, object]:
        i = int(user[1:])
        return {
            "email": f"u{i}@example.com",
            "timestamp": t + n,
            "event": event,
            "sg_event_id": f"{user}-{event}-{n}",
            "sg_message_id": f"X{i}.filterdrecv-1.0",
            "mcrm_id": keys[user],
            **extra,
        }

    batch = [
        ev("u00000", "delivered", 1),
        ev("u00000", "unsubscribe", 2),
        ev("u00001", "bounce", 3, type="bounce", reason="550 5.1.1 <u1@example.com> unknown"),
        ev("u00002", "delivered", 4),
        ev("u00002", "open", 5, sg_machine_open=False),
        ev("u00002", "click", 6, url="https://shop.example.com/x"),
        ev("u00003", "delivered", 7),
    ]
    w.write("sg.json", json.dumps(batch))
    r = cli(w, "import", "message-events", "sg.json", "--preset", "sendgrid", "--format", "json")
    assert r.exit_code == 0, r.stderr
    rows = {f["kind"]: f for f in json.loads(r.stdout)}
    assert (rows["message-events"]["inserted"], rows["consents"]["inserted"]) == (7, 1)
    assert rows["invalid-addresses"]["inserted"] == 1
    assert "u1@example.com" not in r.stderr + r.stdout

    # every week again: only consent and address decide
    w.write("campaigns/promo.yaml", CAMPAIGN + "reentry: always\n")
    r = cli(w, "campaigns", "plan", "promo", "--as-of", LATER, "--format", "json")
    assert r.exit_code == 0, r.stderr
    with open_db(w.ws) as con:
        latest = con.execute(
            "SELECT plan_id FROM campaign_plans ORDER BY created_at DESC, plan_id LIMIT 1"
        ).fetchall()[0][0]
        got = dict(
            con.execute(
                "SELECT user_id, coalesce(reason, status) FROM plan_rows WHERE plan_id = ?",
                [latest],
            ).fetchall()
        )
    assert got["u00000"] == "no_consent"
    assert got["u00001"] == "no_address"
    assert got["u00002"] not in ("no_consent", "no_address")
    assert got["u00003"] not in ("no_consent", "no_address")

    # the report sees what happened to the four messages
    r = cli(w, "report", "messaging", "--from", "2026-03-01", "--as-of", LATER, "--format", "json")
    assert r.exit_code == 0, r.stderr
    (row,) = r.json()["tables"]["messaging"]
    assert (row["sent"], row["delivered"], row["bounces"], row["invalid"]) == (4, 3, 1, 1)
    assert (row["unique_opens"], row["unique_clicks"], row["unsubscribes"]) == (1, 1, 1)
    assert row["base"] == "delivered"
    assert row["open_rate"] == 1 / 3
