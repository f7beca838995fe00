"""`mcrm run`: the cron entry point (SPEC §6.3).

One run, under a lock file (`.mcrm/run.lock`; a second run waits `wait_s`, then exits 3):

1. Recovery: rows a killed run left `sending` are settled (`unknown`, or from the file).
2. Planning: for every scheduled campaign, each schedule slot that is due and not yet in
   `campaign_runs` is planned once, with the data as of now. A slot is due from `lead` before
   it — the earliest user zone's wall-clock time of it for `timezone: user`, else the slot
   itself — and may be caught up until `grace` after its latest zone's time; a slot missed by
   more than that is recorded as `missed` and never sent. Trigger campaigns are planned on
   every run (their rows are once per event: the keys of an event already planned are
   already in the outbox, which adds nothing). Manual campaigns (no schedule) are left to
   `mcrm send`.
3. Sending: every due outbox row of every campaign (new ones, quiet-hour deferrals whose
   window has come, retries whose wait is over), through the lanes.

`dry_run` reports the slots that would be planned and the rows that are due, and does nothing.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mcrm.errors import DatabaseLocked, ProviderError

if TYPE_CHECKING:
    import duckdb

    from mcrm.campaigns.model import Campaign
    from mcrm.config import Workspace

DEFAULT_GRACE = dt.timedelta(hours=6)


@dataclass
class RunSummary:
    now: dt.datetime
    dry_run: bool
    planned: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    receipts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dry_run": self.dry_run,
            "planned": self.planned,
            "missed": self.missed,
            "recovered": self.recovered,
            "outcomes": self.outcomes,
            "due": self.due,
            "stopped": self.stopped,
            "receipts": self.receipts,
        }


@contextmanager
def run_lock(ws: Workspace, wait_s: float) -> Iterator[None]:
    """An exclusive lock on `.mcrm/run.lock` (released by the OS if the process dies)."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    path = ws.state_dir / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    raise DatabaseLocked(
                        "another mcrm run is in progress"
                        + (f" (process {holder})" if holder else ""),
                        hint="runs never overlap; this one did nothing. Cron will try again",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _zone_offsets(con: duckdb.DuckDBPyConnection, zone: str) -> list[str]:
    zones = {zone}
    rows = con.execute("SELECT DISTINCT timezone FROM users WHERE timezone IS NOT NULL")
    for (z,) in rows.fetchall():
        try:
            ZoneInfo(z)
            zones.add(z)
        except Exception:
            continue
    return sorted(zones)


def due_slots(
    c: Campaign,
    now: dt.datetime,
    zone: str,
    zones: list[str],
    grace: dt.timedelta,
    since: dt.datetime | None = None,
) -> list[tuple[dt.datetime, dt.datetime, dt.datetime]]:
    """(slot, first send, last send) of every slot of `c` whose first send time has come:
    after `since` (the campaign's latest recorded slot), or on a first run from `grace`
    before now. The caller tells missed slots (last send + grace < now) from due ones."""
    from mcrm.campaigns.plan import same_wall_time

    s = c.schedule
    if s is None or (s.cron is None and s.at is None):
        return []
    per_user = s.timezone == "user"
    cron_zone = zone if s.timezone in ("user", "workspace") else s.timezone

    def spread(slot: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        if not per_user:
            return slot, slot
        times = same_wall_time(slot, zone, zones).values()
        return min(times), max(times)

    lead = dt.timedelta(hours=27) if per_user else dt.timedelta(0)
    out = []
    if s.at is not None:
        slot = s.at.replace(tzinfo=ZoneInfo(cron_zone)).astimezone(dt.UTC).replace(tzinfo=None)
        first, last = spread(slot)
        if first <= now:
            out.append((slot, first, last))
        return out
    from croniter import croniter

    z = ZoneInfo(cron_zone)
    begin = now - grace - lead if since is None else min(since, now - grace - lead)
    start = begin.replace(tzinfo=dt.UTC).astimezone(z)
    it = croniter(s.cron or "", start)
    for _ in range(1_000):  # at most that many slots reported per run
        t = it.get_next(dt.datetime).astimezone(dt.UTC).replace(tzinfo=None)
        if t > now + lead:
            break
        first, last = spread(t)
        if first <= now:
            out.append((t, first, last))
    return out


def run(
    ws: Workspace,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    grace: dt.timedelta = DEFAULT_GRACE,
    wait_s: float = 10.0,
    rng: random.Random | None = None,
    retry_unknown: bool = False,
) -> RunSummary:
    from mcrm.campaigns.engine import load_all, plan_campaign
    from mcrm.db import open_db
    from mcrm.dispatch import outbox
    from mcrm.dispatch.send import Dispatcher
    from mcrm.segments.engine import _now
    from mcrm.yamlio import Problems

    when = (now or _now()).replace(microsecond=0)
    summary = RunSummary(when, dry_run)
    rng = rng or random.Random()
    probs = Problems()
    loaded = load_all(ws, probs)
    probs.raise_first()
    zone = ws.settings.timezone
    with run_lock(ws, wait_s):
        with open_db(ws, write=not dry_run) as con:
            if not dry_run:
                outbox.ensure_tables(con)
            # schema v5 has campaign_runs, so a read-only (dry) run can read it too
            done = {
                (r[0], r[1])
                for r in con.execute("SELECT campaign, occurrence FROM campaign_runs").fetchall()
            }
            zones = _zone_offsets(con, zone)
        latest: dict[str, dt.datetime] = {}
        for name, occ in done:
            t = dt.datetime.fromisoformat(occ.rstrip("Z"))
            if name not in latest or t > latest[name]:
                latest[name] = t
        todo: list[tuple[Campaign, dt.datetime | None]] = []
        for c in loaded.campaigns.values():
            if c.trigger is not None:
                todo.append((c, None))
                continue
            since = latest.get(c.name)
            for at, _first, last in due_slots(c, when, zone, zones, grace, since):
                occ = at.isoformat() + "Z"
                if (c.name, occ) in done:
                    continue
                if last + grace < when:
                    summary.missed.append({"campaign": c.name, "occurrence": occ})
                    if not dry_run:
                        _record(ws, c.name, occ, "missed", None, when)
                    continue
                todo.append((c, at))
        for c, slot in todo:
            if dry_run:
                summary.planned.append(
                    {"campaign": c.name, "occurrence": slot.isoformat() + "Z" if slot else None}
                )
                continue
            res = plan_campaign(ws, c.name, when, occurrence_at=slot)
            summary.planned.append(
                {
                    "campaign": c.name,
                    "occurrence": res.occurrence,
                    "plan_id": res.plan_id,
                    "planned": res.planned,
                }
            )
            with open_db(ws, write=True) as con:
                outbox.ensure_tables(con)
                con.execute("BEGIN")
                try:
                    added, _ = outbox.enqueue(con, res.plan_id, None, when)
                    summary.planned[-1]["new"] = added
                    if slot is not None:
                        con.execute(
                            "INSERT INTO campaign_runs VALUES (?, ?, 'planned', ?, ?) "
                            "ON CONFLICT DO NOTHING",
                            [c.name, res.occurrence, res.plan_id, when],
                        )
                    elif added == 0:
                        # a trigger plan that adds nothing (every event already queued, or
                        # nobody due) is not kept: cron would pile one up every few minutes
                        con.execute("DELETE FROM plan_rows WHERE plan_id = ?", [res.plan_id])
                        con.execute("DELETE FROM campaign_plans WHERE plan_id = ?", [res.plan_id])
                        (ws.root / res.file).unlink(missing_ok=True)
                        summary.planned[-1]["kept"] = False
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
        with open_db(ws, write=not dry_run) as con:
            if dry_run:
                rows = con.execute(
                    "SELECT campaign, count(*) FROM outbox WHERE status IN ('pending', "
                    "'retry_wait') AND coalesce(next_attempt_at, send_at, ?) <= ? "
                    "GROUP BY 1 ORDER BY 1",
                    [when, when],
                ).fetchall()
                summary.due = {r[0]: int(r[1]) for r in rows}
                return summary
            d = Dispatcher(ws, con, when, rng)
            try:
                summary.recovered = d.recover()
                if retry_unknown:
                    n = outbox.requeue_unknown(con, None, when)
                    summary.recovered["requeued_unknown"] = n
                summary.receipts = d.poll_receipts()
                for c in loaded.campaigns.values():
                    got: dict[str, int] = {}
                    d.drain(c, loaded.delivery, None, got)
                    if got:
                        summary.outcomes[c.name] = got
            finally:
                d.close()
            if d.stopped:
                summary.stopped.append(d.stopped)
    if summary.stopped:
        raise ProviderError("; ".join(summary.stopped), hint="check providers: in mcrm.yaml")
    return summary


def _record(
    ws: Workspace, campaign: str, occ: str, status: str, plan_id: str | None, when: dt.datetime
) -> None:
    from mcrm.db import open_db
    from mcrm.dispatch import outbox

    with open_db(ws, write=True) as con:
        outbox.ensure_tables(con)
        con.execute(
            "INSERT INTO campaign_runs VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [campaign, occ, status, plan_id, when],
        )
