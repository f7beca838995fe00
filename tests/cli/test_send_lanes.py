"""`mcrm send` through a webhook lane against the Standard Webhooks receiver: a 429 with
Retry-After pauses the lane and the message is resent (no attempt consumed, delivered once),
a provider that keeps failing stops its lane after 20 retries in a row and the rows wait with
a next attempt, a 410 (endpoint gone) stops the lane with exit 4, and the summary and outbox
say what happened."""

from __future__ import annotations

import json
from typing import Any

from mcrm.db import open_db
from tests.cli.test_send_exactly_once import AS_OF, make, plan
from tests.conftest import WS, Cli, WorkspaceFactory
from tests.fakes.webhook import WebhookFake


def lane(workspace: WorkspaceFactory, n: int, fake: WebhookFake, path: str = "/hook") -> WS:
    w = make(workspace, n)
    cfg = (w.root / "mcrm.yaml").read_text().split("providers:")[0]
    secret = fake.credentials()["secret"]
    cfg += (
        "providers:\n  hook:\n    type: webhook\n    channels: [email]\n"
        f"    url: {fake.url}{path}\n    secret: {secret}\n    allow_private_targets: true\n"
    )
    w.write("mcrm.yaml", cfg)
    return w


def outbox(w: WS) -> list[Any]:
    with open_db(w.ws) as con:
        return con.execute(
            "SELECT status, attempts, last_error_code, next_attempt_at IS NOT NULL FROM outbox "
            "ORDER BY id"
        ).fetchall()


def test_a_429_pauses_the_lane_and_resends(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    w = lane(workspace, 3, webhook_fake)
    p = plan(cli, w)
    webhook_fake.script((429, {"Retry-After": "1"}))
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["outcomes"] == {"sent": 3, "retry_wait": 1}
    assert len(webhook_fake.deliveries) == 3
    assert len({d.webhook_id for d in webhook_fake.deliveries}) == 3
    assert [row[:2] for row in outbox(w)] == [("sent", 0)] * 3  # the 429 cost no attempt
    assert len(webhook_fake.log) == 4


def test_a_failing_provider_stops_the_lane(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    # batches of 16: after the second, 32 failures in a row (>= 20) stop the lane
    w = lane(workspace, 60, webhook_fake, "/500")
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["outcomes"] == {"retry_wait": 32}
    assert out["not_due"] == 60  # 32 waiting for their next attempt, 28 never tried
    rows = outbox(w)
    assert rows.count(("retry_wait", 1, "500", True)) == 32
    assert rows.count(("pending", 0, None, False)) == 28
    assert len(webhook_fake.log) == 32


def test_endpoint_gone_stops_with_exit_4(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    w = lane(workspace, 4, webhook_fake, "/410")
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 4
    assert "refused our credentials" in r.stderr
    # back to pending, no attempt consumed: the next run tries again
    assert {row[0] for row in outbox(w)} == {"pending"}


def test_sigkill_mid_send_over_http_never_delivers_twice(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    """The sender (a separate process) is killed with SIGKILL at random moments while it
    posts to the receiver, then run to completion: as the receiver's request log shows, no
    message arrived twice; every row is sent (arrived exactly once) or unknown (the kill hit
    between the request and the stored answer: it may or may not have arrived, and is not
    resent)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from tests.cli.test_send_exactly_once import planned_keys

    rng = random.Random(5)
    w = lane(workspace, 1200, webhook_fake)
    p = plan(cli, w)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRM_")}
    argv = [
        sys.executable,
        "-m",
        "mcrm",
        "--workspace",
        str(w.root),
        "send",
        "promo",
        "--plan",
        str(p),
        "--as-of",
        AS_OF,
        "--yes",
    ]
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        time.sleep(rng.uniform(0.8, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode in (0, 1), err.decode()[-2000:]  # 1: some rows are unknown
    assert kills >= 2
    ids = [e.headers.get("webhook-id") for e in webhook_fake.log]
    assert len(ids) == len(set(ids)), "a message was posted twice"
    assert webhook_fake.duplicates == 0
    with open_db(w.ws) as con:
        rows = dict(con.execute("SELECT idempotency_key, status FROM outbox").fetchall())
    assert set(rows) == planned_keys(w)
    assert set(rows.values()) <= {"sent", "unknown"}
    arrived = set(ids)
    assert all(k in arrived for k, st in rows.items() if st == "sent")


def test_unknown_is_not_resent_unless_asked(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    from tests.fakes.base import Drop

    w = lane(workspace, 2, webhook_fake)
    p = plan(cli, w)
    webhook_fake.script(Drop())  # delivered, but the answer is lost
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 1  # a partial send
    assert json.loads(r.stdout)["outcomes"] == {"unknown": 1, "sent": 1}
    again = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert json.loads(again.stdout)["outcomes"] == {}
    assert len(webhook_fake.log) == 2
    forced = cli(
        w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes", "--retry-unknown"
    )
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout)["outcomes"] == {"sent": 1}
    assert webhook_fake.duplicates == 1  # it had arrived: the price of --retry-unknown


def test_twilio_stop_revokes_sms_consent(
    workspace: WorkspaceFactory, cli: Cli, twilio_fake: Any
) -> None:
    c = twilio_fake.credentials()
    w = make(workspace, 3)
    w.write(
        "campaigns/promo.yaml",
        "segment: everyone\nchannels: [sms]\ntemplates:\n  sms: {body: t.j2}\n",
    )
    cfg = (w.root / "mcrm.yaml").read_text().split("providers:")[0]
    w.write(
        "mcrm.yaml",
        cfg
        + "providers:\n  tw:\n    type: twilio\n"
        + "".join(f"    {k}: {v}\n" for k, v in c.items()),
    )
    with open_db(w.ws, write=True) as con:
        # +15005550004 answers 21610: the recipient has sent STOP
        for uid, phone in (("u00000", "+14155552671"), ("u00001", "+15005550004")):
            con.execute("UPDATE users SET phone = ? WHERE user_id = ?", [phone, uid])
        con.execute(
            "INSERT INTO consents (user_id, channel, purpose, granted, ts) "
            "SELECT user_id, 'sms', 'marketing', TRUE, TIMESTAMP '2026-01-01' FROM users"
        )
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["outcomes"] == {"sent": 1, "invalid_recipient": 1}
    with open_db(w.ws) as con:
        rev = con.execute(
            "SELECT purpose, granted, source FROM consents WHERE user_id = 'u00001' "
            "AND NOT granted ORDER BY purpose"
        ).fetchall()
    assert rev == [("marketing", False, "twilio:21610"), ("transactional", False, "twilio:21610")]
    why = cli(w, "campaigns", "why", "promo", "u00001", "--as-of", "2026-03-03T09:00:00Z")
    assert "has not consented to sms" in why.stdout
