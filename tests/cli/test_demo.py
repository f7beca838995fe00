"""`mcrm demo` tells one coherent story on the sample workspace (README, docs/reports.md):

the team moved to mcrm `MOVE_WEEKS` weeks before the end of the data. The e-mail history its
previous tool sent (SendGrid log in data/) stops before the move; from the move on, the demo
sends the same campaigns with mcrm (plans as of each occurrence, holdout rows, coupons, the
file outbox, `sent` message events), computes a segment snapshot a week, and `report
campaign` measures treatment against holdout on the sample's own purchases.

Every expectation is recomputed here from the generated files and the tables, in plain Python
(dates from the calendar, groups and conversions from plan rows and purchases).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcrm import demo, demo_messages
from mcrm.config import Workspace, open_workspace
from tests.conftest import Cli

REPO = Path(__file__).resolve().parents[2]
USERS = 400
ZONE = ZoneInfo("Europe/Prague")  # the example workspace's zone (mcrm.yaml)
MOVE_DAY = demo_messages.moved(demo.SAMPLE_END)
MOVE = dt.datetime.combine(MOVE_DAY, dt.time(), ZONE).astimezone(dt.UTC).replace(tzinfo=None)
END = dt.datetime(2026, 11, 15, 23, 59, tzinfo=ZONE).astimezone(dt.UTC).replace(tzinfo=None)


def _rows(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _counts(ws: Workspace) -> dict[str, int]:
    tables = ("campaign_plans", "plan_rows", "outbox", "message_events", "campaign_runs")
    return {t: int(_rows(ws, f"SELECT count(*) FROM {t}")[0][0]) for t in tables}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, int]]:
    """The example workspace's settings, segments and campaigns on a generated sample; `mcrm
    demo` run twice (the second run must add nothing). Returns the workspace and the table
    counts after the first run."""
    root = tmp_path_factory.mktemp("demo") / "ws"
    root.mkdir()
    shutil.copy(REPO / "mcrm.yaml", root / "mcrm.yaml")
    shutil.copy(REPO / "segments.yaml", root / "segments.yaml")
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    ws = open_workspace(str(root), {}, root)
    assert demo.run(ws, generate=True, users=USERS, seed=7, quiet=True) == 0
    first = _counts(ws)
    assert demo.run(ws, generate=False, users=USERS, seed=7, quiet=True) == 0
    return ws, first


def _mondays() -> list[dt.date]:
    """Mondays from the move to the sample's last day (the weekly win-back occurrences that
    mcrm sent; the next one, 2026-11-16, is after the data)."""
    out, d = [], MOVE_DAY
    while d <= demo.SAMPLE_END:
        if d.weekday() == 0:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _sendgrid(ws: Workspace) -> list[dict[str, Any]]:
    with gzip.open(ws.root / "data" / "sendgrid_events.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _utc(ts: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ts)


def test_the_provider_history_ends_before_the_move(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = story
    events = _sendgrid(ws)
    sends = [e for e in events if e["event"] == "processed"]
    assert sends and {e["mcrm_campaign"] for e in sends} == set(demo_messages.EMAIL_CAMPAIGNS)
    # every event of the previous tool (sends, opens, clicks, ...) is before the move, and its
    # last win-back went out on the Monday before it
    assert max(_utc(e["timestamp"]) for e in events) < MOVE
    last_winback = max(
        _utc(e["timestamp"]) for e in sends if e["mcrm_campaign"] == "winback_dormant"
    )
    assert MOVE - last_winback < dt.timedelta(days=7)
    # the app's weekly pushes were not moved (not in campaigns/): their sends go to the end
    push = gzip.decompress((ws.root / "data" / "push_sends.csv.gz").read_bytes()).decode()
    stamps = [line.rsplit(",", 1)[1] for line in push.splitlines()[1:]]
    assert max(stamps) > MOVE.isoformat()


def test_mcrm_planned_every_occurrence_since_the_move(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = story
    got = _rows(
        ws,
        "SELECT r.campaign, r.occurrence, r.status, p.as_of, p.planned FROM campaign_runs r "
        "JOIN campaign_plans p USING (plan_id) ORDER BY r.occurrence",
    )
    winback = [r for r in got if r[0] == "winback_dormant"]
    days = [dt.datetime.fromisoformat(r[1].rstrip("Z")).replace(tzinfo=dt.UTC) for r in winback]
    assert [d.astimezone(ZONE).date() for d in days] == _mondays()
    assert all(d.astimezone(ZONE).hour == 10 for d in days)  # the cron's 10:00, workspace zone
    # only what report campaign can measure (a goal and a holdout) was moved: the VIP e-mail
    # has no holdout, and champions_ab_test's one slot is after the data
    assert {r[0] for r in got} == {"winback_dormant"}
    for _name, occ, status, as_of, planned in got:
        slot = dt.datetime.fromisoformat(occ.rstrip("Z"))
        assert status == "planned" and planned > 0
        # planned before the slot (the earliest zone's 10:00) with the data of that moment
        assert MOVE <= as_of <= slot


def test_holdout_rows_are_planned_and_never_sent(story: tuple[Workspace, dict[str, int]]) -> None:
    ws, _ = story
    held = set(
        _rows(
            ws,
            "SELECT pr.user_id, r.occurrence FROM plan_rows pr JOIN campaign_runs r "
            "USING (plan_id) WHERE r.campaign = 'winback_dormant' AND pr.status = 'holdout'",
        )
    )
    assert held
    sent = set(
        _rows(
            ws,
            "SELECT o.user_id, o.occurrence FROM outbox o JOIN message_events m "
            "ON m.event_id = o.idempotency_key WHERE o.campaign = 'winback_dormant' "
            "AND m.type = 'sent'",
        )
    )
    queued = set(
        _rows(ws, "SELECT user_id, occurrence FROM outbox WHERE campaign = 'winback_dormant'")
    )
    assert sent and queued >= sent
    assert not held & queued  # planned, logged, never sent


def test_every_planned_message_was_sent_at_its_users_own_time(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = story
    planned = _rows(
        ws,
        "SELECT pr.idempotency_key, pr.plan_id, r.campaign, pr.channel, pr.zone, pr.send_at "
        "FROM plan_rows pr JOIN campaign_runs r USING (plan_id) WHERE pr.status = 'planned'",
    )
    assert planned
    outbox = {
        r[0]: r[1:] for r in _rows(ws, "SELECT idempotency_key, status, plan_id FROM outbox")
    }
    events = {
        r[0]: r[1:]
        for r in _rows(
            ws,
            "SELECT event_id, ts, campaign, channel FROM message_events "
            "WHERE type = 'sent' AND provider = 'outbox'",
        )
    }
    lines = (ws.state_dir / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    in_file = [json.loads(line)["id"] for line in lines]
    assert len(in_file) == len(set(in_file))  # each message once in the file
    hour = {"winback_dormant": 10}
    for key, plan_id, campaign, channel, zone, send_at in planned:
        assert outbox[key] == ("sent", plan_id)
        ts, ev_campaign, ev_channel = events[key]
        assert (ev_campaign, ev_channel) == (campaign, channel)
        assert ts == send_at and key in in_file
        local = ts.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))
        assert local.hour == hour[campaign], (key, zone, local)
    assert set(in_file) == {p[0] for p in planned}  # and nothing else went out


def test_no_campaign_was_sent_by_two_systems_on_one_day(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = story
    before = {
        (e["mcrm_campaign"], _utc(e["timestamp"]).date())
        for e in _sendgrid(ws)
        if e["event"] == "processed"
    }
    after = {
        (c, ts.date())
        for c, ts in _rows(ws, "SELECT campaign, ts FROM message_events WHERE provider = 'outbox'")
    }
    assert before and after and not before & after
    assert max(d for _c, d in before) < min(d for _c, d in after)


def test_coupons_are_assigned_to_the_planned_recipients(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = story
    planned = {
        (u, p)
        for u, p in _rows(
            ws,
            "SELECT pr.user_id, pr.plan_id FROM plan_rows pr JOIN campaign_runs r USING "
            "(plan_id) WHERE r.campaign = 'winback_dormant' AND pr.status = 'planned'",
        )
    }
    codes = _rows(
        ws,
        "SELECT c.user_id, c.plan_id, c.code FROM coupon_assignments c "
        "JOIN campaign_runs r USING (plan_id)",
    )
    assert planned and {(u, p) for u, p, _c in codes} >= planned
    assert all(code.startswith("BACK15") for _u, _p, code in codes)


def test_a_segment_snapshot_a_week(story: tuple[Workspace, dict[str, int]]) -> None:
    ws, _ = story
    runs = _rows(ws, "SELECT run_id, as_of FROM segment_runs ORDER BY run_id")
    assert len(runs) >= len(_mondays()) + 1
    weekly = [a for _r, a in runs if a < END - dt.timedelta(days=1)]
    assert [a.replace(tzinfo=dt.UTC).astimezone(ZONE).date() for a in weekly][
        : len(_mondays())
    ] == (_mondays())
    stages = _rows(ws, "SELECT run_id, count(*) FROM lifecycle_history GROUP BY 1 ORDER BY 1")
    assert [r for r, _n in stages] == [r for r, _a in runs] and all(n > 0 for _r, n in stages)


def test_a_second_demo_sends_and_plans_nothing_again(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    ws, first = story
    now = _counts(ws)
    # the closing plan as of the end of data is the same plan again (same id, replaced)
    assert now == first


def test_report_campaign_measures_the_backfill_against_its_holdout(
    story: tuple[Workspace, dict[str, int]], cli: Cli
) -> None:
    ws, _ = story
    res = cli(
        ws.root, "report", "campaign", "winback_dormant", "--from", MOVE_DAY.isoformat(),
        "--as-of", "2026-11-15T23:59", "--format", "jsonl",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in res.stdout.splitlines():
        row = json.loads(line)
        tables[row["table"]].append(row)
    groups = {g["group"]: g for g in tables["groups"]}
    # independently: each user once, at their first planned occurrence (treatment or holdout),
    # converting with a paid order within 7 days of the planned send, up to the as-of
    rows = _rows(
        ws,
        "SELECT pr.user_id, pr.status, pr.send_at, p.as_of FROM plan_rows pr "
        "JOIN campaign_plans p USING (plan_id) WHERE p.campaign = 'winback_dormant' "
        "AND pr.status IN ('planned', 'holdout') AND pr.send_at IS NOT NULL",
    )
    first: dict[str, tuple[dt.datetime, str]] = {}
    for user, status, send_at, as_of in rows:
        if as_of > END or not (MOVE <= send_at <= END):
            continue
        if user not in first or send_at < first[user][0]:
            first[user] = (send_at, status)
    paid = defaultdict(list)
    for user, ts in _rows(ws, "SELECT user_id, ts FROM purchases WHERE status = 'paid'"):
        paid[user].append(ts)
    expect: dict[str, list[int]] = {"default": [0, 0], "holdout": [0, 0]}
    for user, (at, status) in first.items():
        g = expect["holdout" if status == "holdout" else "default"]
        g[0] += 1
        g[1] += any(at <= t <= min(at + dt.timedelta(days=7), END) for t in paid[user])
    got = {k: [groups[k]["recipients"], groups[k]["conversions"]] for k in expect}
    assert got == expect
    assert expect["holdout"][0] > 0 and expect["default"][0] > expect["holdout"][0]
    # a small sample with no planted effect: the verdict says it cannot tell
    (uplift,) = [r for r in tables["uplift"] if r["variant"] == "default"]
    assert uplift["verdict"] == "inconclusive"


def test_winback_reentry_counts_the_previous_tools_sends(
    story: tuple[Workspace, dict[str, int]],
) -> None:
    """`reentry: 30d` holds across the move: no planned win-back recipient had a win-back in
    the 30 days before the plan, whether the old tool sent it (SendGrid log in data/, by the
    recipient's e-mail) or mcrm (outbox). The first plans after the move do suppress some."""
    ws, _ = story
    user_of = {
        str(e).strip().lower(): u
        for u, e in _rows(ws, "SELECT user_id, email FROM users WHERE email IS NOT NULL")
    }
    sends: dict[str, list[dt.datetime]] = defaultdict(list)
    for e in _sendgrid(ws):
        if e["event"] == "processed" and e["mcrm_campaign"] == "winback_dormant":
            user = user_of.get(str(e["email"]).strip().lower())
            if user is not None:
                sends[user].append(_utc(e["timestamp"]))
    for u, ts in _rows(
        ws,
        "SELECT user_id, send_at FROM outbox WHERE campaign = 'winback_dormant' "
        "AND status = 'sent'",
    ):
        sends[u].append(ts)
    plans = _rows(
        ws,
        "SELECT p.plan_id, p.as_of FROM campaign_plans p JOIN campaign_runs r USING (plan_id) "
        "WHERE p.campaign = 'winback_dormant' ORDER BY p.as_of",
    )
    assert plans
    suppressed = 0
    for plan_id, as_of in plans:
        rows = _rows(
            ws, "SELECT user_id, status, reason FROM plan_rows WHERE plan_id = ?", [plan_id]
        )
        window = as_of - dt.timedelta(days=30)
        for user, status, reason in rows:
            recent = [t for t in sends.get(user, []) if window < t <= as_of]
            if status == "planned":
                assert not recent, (plan_id, user, recent)
            if reason == "reentry":
                assert recent, (plan_id, user)
                suppressed += 1
    assert suppressed > 0
