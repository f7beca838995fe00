"""`mcrm send` through the file outbox: every planned message reaches the file exactly once,
even when the sending process is killed with SIGKILL at random points (between the fsync and
the outbox update too) and rerun; a second send sends nothing; consent revoked after planning
is honoured at send time."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcrm.db import open_db
from tests.conftest import WS, Cli, WorkspaceFactory
from tests.unit.test_campaign_plan import _insert

AS_OF = "2026-03-02T09:00:00Z"
CONFIG = """\
timezone: UTC
delivery:
  unsubscribe: {url: "https://u.example.com/u/{token}"}
providers:
  outbox: {type: file, channels: [email, sms], path: out/outbox.jsonl, batch: BATCH}
"""
SEGMENTS = "segments:\n  everyone: {where: {attr: user_id, exists: true}}\n"
CAMPAIGN = """\
segment: everyone
channels: [email]
templates:
  email: {subject: s.j2, text: t.j2, html: h.html.j2}
"""


def make(workspace: WorkspaceFactory, n: int, batch: int = 10) -> WS:
    w = workspace(
        CONFIG.replace("BATCH", str(batch)),
        {
            "segments.yaml": SEGMENTS,
            "campaigns/promo.yaml": CAMPAIGN,
            "campaigns/s.j2": "Hello {{ user.first_name | default('there') }}",
            "campaigns/t.j2": "Hi {{ user.user_id }} {{ unsubscribe_url }}",
            "campaigns/h.html.j2": "<a href='{{ unsubscribe_url }}'>unsubscribe</a>",
        },
    )
    t = dt.datetime(2026, 1, 1)
    with open_db(w.ws, write=True) as con:
        _insert(
            con,
            "users",
            ["user_id", "email", "first_name", "first_seen"],
            [[f"u{i:05d}", f"u{i}@example.com", f"N{i}", t] for i in range(n)],
        )
        _insert(
            con,
            "consents",
            ["user_id", "channel", "purpose", "granted", "ts"],
            [[f"u{i:05d}", "email", "marketing", True, t] for i in range(n)],
        )
    return w


def plan(cli: Cli, w: WS) -> Path:
    r = cli(w, "campaigns", "plan", "promo", "--as-of", AS_OF, "--format", "json")
    assert r.exit_code == 0, r.stderr
    files = sorted((w.root / ".mcrm" / "plans" / "promo").glob("*.jsonl"))
    assert len(files) == 1
    return files[0]


def file_ids(w: WS) -> list[str]:
    path = w.root / "out" / "outbox.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line)["id"])
        except ValueError:
            continue
    return out


def planned_keys(w: WS) -> set[str]:
    with open_db(w.ws) as con:
        return {
            r[0]
            for r in con.execute(
                "SELECT idempotency_key FROM plan_rows WHERE status = 'planned'"
            ).fetchall()
        }


def statuses(w: WS) -> dict[str, int]:
    with open_db(w.ws) as con:
        return dict(con.execute("SELECT status, count(*) FROM outbox GROUP BY 1").fetchall())


def test_send_then_send_again_sends_nothing(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, 25)
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["outcomes"] == {"sent": 25}
    again = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["outcomes"] == {}
    ids = file_ids(w)
    assert sorted(ids) == sorted(planned_keys(w))
    # the content is the rendered message, the address is left out without include_pii
    first = json.loads((w.root / "out" / "outbox.jsonl").read_text().splitlines()[0])
    assert first["content"]["subject"].startswith("Hello N")
    assert "address" not in first
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # caps and reentry count what was sent
    with open_db(w.ws) as con:
        n = con.execute("SELECT count(*) FROM message_events WHERE type = 'sent'").fetchall()
    assert n[0][0] == 25


def test_consent_revoked_after_planning_is_not_sent(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, 10)
    p = plan(cli, w)
    with open_db(w.ws, write=True) as con:
        con.execute(
            "INSERT INTO consents VALUES ('u00003', 'email', 'marketing', FALSE, "
            "TIMESTAMP '2026-03-02 08:30:00', 'test', NULL)"
        )
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--yes")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["outcomes"] == {"sent": 9, "suppressed": 1}
    with open_db(w.ws) as con:
        row = con.execute(
            "SELECT status, last_error_code FROM outbox WHERE user_id = 'u00003'"
        ).fetchall()
    assert row == [("failed", "no_consent")]
    assert len(file_ids(w)) == 9


def test_send_needs_yes_off_a_terminal(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, 3)
    r = cli(w, "send", "promo", "--as-of", AS_OF)
    assert r.exit_code == 2
    assert "--yes" in r.stderr
    assert file_ids(w) == []


def test_dry_run_records_nothing(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make(workspace, 5)
    p = plan(cli, w)
    r = cli(w, "send", "promo", "--plan", str(p), "--as-of", AS_OF, "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rendered"] == 5
    assert file_ids(w) == []
    assert statuses(w) == {}


def _send_proc(w: WS, p: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRM_")}
    return subprocess.Popen(
        [
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _lines(w: WS) -> int:
    path = w.root / "out" / "outbox.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _kill_at_random_point(proc: subprocess.Popen[bytes], w: WS, rng: random.Random) -> bool:
    """SIGKILL `proc` at a random point of its work, whatever the machine's speed: one kill in
    four at a random moment of start-up and enqueue (before the first write), the others once
    the file has grown by a random number of messages (up to 80% of what is left), plus a
    random few milliseconds, so the kill lands anywhere between an fsync and the outbox update
    as well. True when it was killed (not finished first)."""
    before = _lines(w)
    left = 1500 - before
    if rng.random() < 0.25 or left < 5:
        time.sleep(rng.uniform(0.05, 0.8))
    else:
        target = before + rng.randint(1, max(1, int(left * 0.8)))
        deadline = time.monotonic() + 120
        while proc.poll() is None and _lines(w) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_points_never_sends_twice(
    workspace: WorkspaceFactory, cli: Cli, seed: int
) -> None:
    """Kill `mcrm send` with SIGKILL at random points, many times, then let it finish:
    every planned message is in the file exactly once and the outbox agrees."""
    rng = random.Random(seed)
    w = make(workspace, 1500, batch=7)
    p = plan(cli, w)
    kills = 0
    seen_progress: list[int] = []
    for _ in range(8):
        proc = _send_proc(w, p)
        kills += _kill_at_random_point(proc, w, rng)
        proc.wait()
        seen_progress.append(len(file_ids(w)))
        if len(set(file_ids(w))) == 1500:
            break
    assert kills >= 2, "the sender finished before it could be killed: make the test bigger"
    for _ in range(3):  # finish (a run also settles what the last kill left 'sending')
        proc = _send_proc(w, p)
        err = proc.communicate(timeout=300)[1]
        assert proc.returncode == 0, err.decode()[-2000:]
    ids = file_ids(w)
    dupes = {k for k in ids if ids.count(k) > 1} if len(ids) != len(set(ids)) else set()
    assert not dupes, f"{len(dupes)} message(s) written twice after {kills} kills"
    assert set(ids) == planned_keys(w)
    assert statuses(w) == {"sent": 1500}
    assert seen_progress == sorted(seen_progress)
