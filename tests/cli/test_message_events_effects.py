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


def as_utc(text: str) -> dt.datetime:
    """An ISO instant as the naive UTC timestamp the database stores."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).replace(tzinfo=None)


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
            # by its as-of: created_at has whole seconds, so two plans made in one second tie
            "SELECT plan_id FROM campaign_plans WHERE campaign = 'promo' AND as_of = ?",
            [as_utc(LATER)],
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


def test_imported_provider_sends_count_once_for_caps_and_reentry(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    """A SendGrid `processed` that links to no outbox row is mail another tool sent: caps and
    reentry count it. One that links to mcrm's send is the same message as dispatch's `sent`
    row and must not count a second time."""
    w = make(workspace, 4)
    with open_db(w.ws, write=True) as con:
        con.executemany(
            "INSERT INTO identities (kind, value, user_id) VALUES ('email', ?, ?)",
            [[f"u{i}@example.com", f"u{i:05d}"] for i in range(4)],
        )
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    with open_db(w.ws) as con:
        keys = dict(con.execute("SELECT user_id, idempotency_key FROM outbox").fetchall())

    def ev(i: int, event: str, at: str, n: int, **extra: object) -> dict[str, object]:
        return {
            "email": f"u{i}@example.com",
            "timestamp": epoch(at),
            "event": event,
            "sg_event_id": f"e{i}-{event}-{n}",
            "sg_message_id": f"F{i}{n}.filterdrecv-1.0",
            **extra,
        }

    batch = [
        # mcrm's own sends, as SendGrid reports them (linked by mcrm_id)
        *(
            ev(i, "processed", "2026-03-02T09:00:05", 1, mcrm_id=keys[f"u{i:05d}"])
            for i in range(4)
        ),
        *(
            ev(i, "delivered", "2026-03-02T09:00:09", 1, mcrm_id=keys[f"u{i:05d}"])
            for i in range(4)
        ),
        # the old tool's mail: u1 got a newsletter, u3 a winback, ten days ago
        ev(1, "processed", "2026-03-03T12:00:00", 2, mcrm_campaign="newsletter"),
        ev(1, "delivered", "2026-03-03T12:00:04", 2, mcrm_campaign="newsletter"),
        ev(3, "processed", "2026-02-23T12:00:00", 3, mcrm_campaign="winback"),
    ]
    w.write("sg.json", json.dumps(batch))
    r = cli(w, "import", "message-events", "sg.json", "--preset", "sendgrid", "--format", "json")
    assert r.exit_code == 0, r.stderr
    with open_db(w.ws) as con:
        sent = dict(
            con.execute(
                "SELECT user_id, count(*) FROM message_events WHERE type = 'sent' GROUP BY 1"
            ).fetchall()
        )
    # one `sent` row per real message: dispatch's four, and the two foreign sends
    assert sent == {"u00000": 1, "u00001": 2, "u00002": 1, "u00003": 2}

    def plan_reasons(name: str, as_of: str) -> dict[str, str]:
        r = cli(w, "campaigns", "plan", name, "--as-of", as_of, "--format", "json")
        assert r.exit_code == 0, r.stderr
        with open_db(w.ws) as con:
            latest = con.execute(
                "SELECT plan_id FROM campaign_plans WHERE campaign = ? AND as_of = ?",
                [name, as_utc(as_of)],
            ).fetchall()[0][0]
            return dict(
                con.execute(
                    "SELECT user_id, coalesce(reason, status) FROM plan_rows WHERE plan_id = ?",
                    [latest],
                ).fetchall()
            )

    # at most 2 e-mails a week: u1 had mcrm's and the newsletter (a third is over the cap);
    # the others had one message each, reported twice (sent + processed), which is one
    caps = "delivery:\n  frequency_caps: [{channel: email, max: 2, per: 7d}]\n"
    w.write("campaigns/promo.yaml", CAMPAIGN + "reentry: always\n" + caps)
    got = plan_reasons("promo", "2026-03-05T09:00:00Z")
    assert got == {
        "u00000": "planned",
        "u00001": "frequency_cap",
        "u00002": "planned",
        "u00003": "planned",
    }

    # winback at most every 30 days: the old tool sent u3 one on 2026-02-23
    w.write("campaigns/winback.yaml", CAMPAIGN + "reentry: 30d\n")
    got = plan_reasons("winback", "2026-03-05T09:00:00Z")
    assert got == {
        "u00000": "planned",
        "u00001": "planned",
        "u00002": "planned",
        "u00003": "reentry",
    }
