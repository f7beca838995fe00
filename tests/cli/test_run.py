"""`mcrm run` from cron: a due schedule slot is planned once and its messages sent once, a
second run sends nothing, a slot missed by more than the grace period is recorded and never
sent, overlapping runs are locked out (exit 3) and two runs started together never send a
message twice, quiet-hour deferrals go out when their window comes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from mcrm.db import open_db
from tests.cli.test_send_exactly_once import file_ids, make
from tests.conftest import WS, Cli, WorkspaceFactory

DAILY = """\
segment: everyone
channels: [email]
schedule: {cron: "0 10 * * *", timezone: UTC}
reentry: always
templates:
  email: {subject: s.j2, text: t.j2, html: h.html.j2}
"""


def daily(workspace: WorkspaceFactory, n: int, quiet: str = "") -> WS:
    w = make(workspace, n)
    w.write("campaigns/promo.yaml", DAILY)
    if quiet:
        cfg = (w.root / "mcrm.yaml").read_text()
        w.write("mcrm.yaml", cfg.replace("delivery:\n", f"delivery:\n  quiet_hours: {quiet}\n"))
    return w


def run(cli: Cli, w: WS, now: str, *args: str) -> dict[str, Any]:
    r = cli(w, "run", "--now", now, *args)
    assert r.exit_code == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_a_due_slot_is_planned_and_sent_once(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = daily(workspace, 20)
    before = run(cli, w, "2026-03-02T09:59:00Z")
    assert before["planned"] == [] and file_ids(w) == []
    first = run(cli, w, "2026-03-02T10:00:00Z")
    assert [p["occurrence"] for p in first["planned"]] == ["2026-03-02T10:00:00Z"]
    assert first["outcomes"] == {"promo": {"sent": 20}}
    again = run(cli, w, "2026-03-02T10:05:00Z")
    assert again["planned"] == [] and again["outcomes"] == {}
    assert len(file_ids(w)) == 20
    # the next day's slot is a new occurrence: sent again (reentry: always)
    nxt = run(cli, w, "2026-03-03T10:01:00Z")
    assert [p["occurrence"] for p in nxt["planned"]] == ["2026-03-03T10:00:00Z"]
    ids = file_ids(w)
    assert len(ids) == 40 and len(set(ids)) == 40


def test_catch_up_within_grace_and_missed_after(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = daily(workspace, 5)
    late = run(cli, w, "2026-03-02T13:00:00Z", "--grace", "6h")
    assert [p["occurrence"] for p in late["planned"]] == ["2026-03-02T10:00:00Z"]
    assert late["outcomes"] == {"promo": {"sent": 5}}
    # two days without cron: yesterday's slot is past the grace, today's is caught up
    gap = run(cli, w, "2026-03-04T12:00:00Z", "--grace", "6h")
    assert [m["occurrence"] for m in gap["missed"]] == ["2026-03-03T10:00:00Z"]
    assert [p["occurrence"] for p in gap["planned"]] == ["2026-03-04T10:00:00Z"]
    again = run(cli, w, "2026-03-04T12:01:00Z", "--grace", "6h")
    assert again["missed"] == [] and again["planned"] == []
    assert len(file_ids(w)) == 10
    with open_db(w.ws) as con:
        rows = con.execute(
            "SELECT occurrence, status FROM campaign_runs ORDER BY occurrence"
        ).fetchall()
    assert [r[1] for r in rows] == ["planned", "missed", "planned"]


def test_quiet_hour_deferrals_go_out_in_their_window(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w = daily(workspace, 4, quiet='{start: "09:00", end: "11:00", action: defer}')
    first = run(cli, w, "2026-03-02T10:00:00Z")
    assert first["outcomes"] == {} and file_ids(w) == []
    assert first["planned"][0]["planned"] == 4
    later = run(cli, w, "2026-03-02T11:00:00Z")
    assert later["planned"] == []
    assert later["outcomes"] == {"promo": {"sent": 4}}


def test_a_second_run_is_locked_out(workspace: WorkspaceFactory, cli: Cli) -> None:
    from mcrm.dispatch.run import run_lock

    w = daily(workspace, 3)
    with run_lock(w.ws, 0):
        r = cli(w, "run", "--now", "2026-03-02T10:00:00Z", "--wait", "0")
    assert r.exit_code == 3
    assert "another mcrm run is in progress" in r.stderr
    assert file_ids(w) == []


def test_two_runs_started_together_never_send_twice(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = daily(workspace, 400)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRM_")}
    argv = [
        sys.executable,
        "-m",
        "mcrm",
        "--workspace",
        str(w.root),
        "run",
        "--now",
        "2026-03-02T10:00:00Z",
        "--wait",
        "120",
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    ids = file_ids(w)
    assert len(ids) == 400 and len(set(ids)) == 400
    sent = [json.loads(o).get("outcomes", {}).get("promo", {}).get("sent", 0) for o, _ in outs]
    assert sorted(sent) == [0, 400]


TRIGGER = """\
segment: everyone
channels: [email]
trigger: {event: add_to_cart, delay: 1h, unless: purchase}
reentry: always
templates:
  email: {subject: s.j2, text: t.j2, html: h.html.j2}
"""


def test_a_trigger_event_is_sent_once_and_idle_plans_are_not_kept(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    import datetime as dt

    from tests.unit.test_campaign_plan import _insert

    w = make(workspace, 3)
    w.write("campaigns/promo.yaml", TRIGGER)
    with open_db(w.ws, write=True) as con:
        _insert(
            con,
            "events",
            ["event_id", "user_id", "name", "ts"],
            [
                ["e1", "u00000", "add_to_cart", dt.datetime(2026, 3, 2, 8, 0)],
                ["e2", "u00001", "add_to_cart", dt.datetime(2026, 3, 2, 8, 10)],
                ["e3", "u00001", "purchase", dt.datetime(2026, 3, 2, 8, 30)],  # bought: skip
            ],
        )
    first = run(cli, w, "2026-03-02T09:05:00Z")
    assert first["outcomes"] == {"promo": {"sent": 1}}
    # cron again and again: the same event is never queued twice, and plans that add
    # nothing are not kept
    for minute in (10, 15, 20):
        again = run(cli, w, f"2026-03-02T09:{minute}:00Z")
        assert again["outcomes"] == {}
        assert again["planned"][0]["new"] == 0 and again["planned"][0]["kept"] is False
    assert len(file_ids(w)) == 1
    assert len(list((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))) == 1
    with open_db(w.ws) as con:
        assert con.execute("SELECT count(*) FROM campaign_plans").fetchall()[0][0] == 1
