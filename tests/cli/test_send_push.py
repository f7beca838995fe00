"""Push end to end: `mcrm run` through an Expo lane polls receipts and a late
DeviceNotRegistered invalidates the token (later plans say invalid_token); `mcrm send` through
FCM (real google-auth against the fake's token endpoint) sends each message once and an
UNREGISTERED token is never used again; a OneSignal batch whose answer was lost is resent
with the same idempotency key and the fake creates one notification."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from mcrm.db import open_db
from tests.conftest import WS, Cli, WorkspaceFactory
from tests.fakes.base import Drop
from tests.unit.test_campaign_plan import _insert

AS_OF = "2026-03-02T09:00:00Z"
SEGMENTS = "segments:\n  everyone: {where: {attr: user_id, exists: true}}\n"
CAMPAIGN = """\
segment: everyone
channels: [push]
reentry: always
templates:
  push: {title: t.j2, body: b.j2, deeplink: "shop://offers/{{ campaign.name }}"}
"""


def push_ws(workspace: WorkspaceFactory, providers: str, tokens: list[str]) -> WS:
    w = workspace(
        'timezone: UTC\ndelivery:\n  unsubscribe: {url: "https://u.example.com/u/{token}"}\n'
        + providers,
        {
            "segments.yaml": SEGMENTS,
            "campaigns/promo.yaml": CAMPAIGN,
            "campaigns/t.j2": "Hi {{ user.first_name | default('there') }}",
            "campaigns/b.j2": "Something new for you",
        },
    )
    t = dt.datetime(2026, 1, 1)
    ids = [f"u{i:03d}" for i in range(len(tokens))]
    with open_db(w.ws, write=True) as con:
        _insert(
            con,
            "users",
            ["user_id", "first_name", "first_seen"],
            [[u, f"N{i}", t] for i, u in enumerate(ids)],
        )
        _insert(
            con,
            "consents",
            ["user_id", "channel", "purpose", "granted", "ts"],
            [[u, "push", "marketing", True, t] for u in ids],
        )
        _insert(
            con,
            "devices",
            ["user_id", "device_id", "platform", "push_token", "push_enabled", "last_seen"],
            [[u, f"d-{u}", "ios", tok, True, t] for u, tok in zip(ids, tokens, strict=True)],
        )
    return w


def send(cli: Cli, w: WS, when: str = AS_OF) -> dict[str, Any]:
    """Send the campaign's one plan (made on the first call): a manual campaign's every
    unplanned `send` is a new occurrence, so retries go through the same plan file."""
    plans = sorted((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))
    if not plans:
        r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
        assert r.exit_code == 0, r.stderr
        plans = sorted((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))
    r = cli(w, "send", "promo", "--plan", str(plans[0]), "--as-of", when, "--yes")
    assert r.exit_code in (0, 1), r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_expo_receipts_invalidate_a_late_dead_token(
    workspace: WorkspaceFactory, cli: Cli, expo_fake: Any
) -> None:
    tokens = ["ExponentPushToken[ok-1]", "ExponentPushToken[late-unregistered-2]"]
    w = push_ws(
        workspace, f"providers:\n  expo:\n    type: expo\n    base_url: {expo_fake.url}\n", tokens
    )
    first = send(cli, w)
    assert first["outcomes"] == {"sent": 2}
    assert len(expo_fake.sent) == 2
    # 20 minutes later, cron: the receipts are due
    r = cli(w, "run", "--now", "2026-03-02T09:20:00Z")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["receipts"] == {"ok": 1, "invalid_recipient": 1}
    with open_db(w.ws) as con:
        rows = dict(con.execute("SELECT user_id, status FROM outbox").fetchall())
        dead = con.execute(
            "SELECT user_id FROM devices WHERE invalidated_at IS NOT NULL"
        ).fetchall()
    assert rows == {"u000": "sent", "u001": "invalid_recipient"}
    assert dead == [("u001",)]
    # the next plan never uses that token again
    r = cli(w, "campaigns", "why", "promo", "u001", "--as-of", "2026-03-03T09:00:00Z")
    assert "no valid push token" in r.stdout


def test_fcm_send_once_and_unregistered_never_again(
    workspace: WorkspaceFactory, cli: Cli, fcm_fake: Any, tmp_path: Any
) -> None:
    sa = tmp_path / "sa.json"
    fcm_fake.write_service_account(sa)
    providers = (
        f"providers:\n  fcm:\n    type: fcm\n    service_account: {sa}\n"
        f"    base_url: {fcm_fake.url}\n    token_uri: {fcm_fake.token_uri}\n"
    )
    w = push_ws(workspace, providers, ["tok-a", "unregistered-b", "tok-c"])
    out = send(cli, w)
    assert out["outcomes"] == {"sent": 2, "invalid_recipient": 1}
    assert len(fcm_fake.sent) == 2
    again = send(cli, w)  # same occurrence: nothing new
    assert again["outcomes"] == {}
    assert len(fcm_fake.sent) == 2
    with open_db(w.ws) as con:
        dead = con.execute("SELECT user_id FROM devices WHERE invalidated_at IS NOT NULL")
        assert dead.fetchall() == [("u001",)]


def test_onesignal_resends_a_lost_batch_under_the_same_key(
    workspace: WorkspaceFactory, cli: Cli, onesignal_fake: Any
) -> None:
    c = onesignal_fake.credentials()
    providers = (
        f"providers:\n  os:\n    type: onesignal\n    base_url: {c['base_url']}\n"
        f"    app_id: {c['app_id']}\n    api_key: {c['api_key']}\n"
    )
    w = push_ws(workspace, providers, ["sub-1", "sub-2", "sub-3"])
    # personalised titles: one request per user; the first is created but its answer lost
    onesignal_fake.script(Drop())
    first = send(cli, w)
    assert first["outcomes"] == {"retry_wait": 1, "sent": 2}
    with open_db(w.ws) as con:
        keys = {r[0] for r in con.execute("SELECT batch_key FROM outbox").fetchall()}
    assert len(keys) == 1 and None not in keys  # stored before the request
    second = send(cli, w, "2026-03-02T09:01:00Z")
    assert second["outcomes"] == {"sent": 1}
    assert len(onesignal_fake.notifications) == 3  # one per user, none twice
    assert onesignal_fake.replays == 1
