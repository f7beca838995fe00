"""Events imports against an independent plain-Python model of SPEC §3.2 / docs/import.md.

Generated files (hypothesis) mix rejects (unreadable or future timestamps, empty names, rows
with no id at all, bad platforms, broken JSON), in-file and cross-import duplicates (by event
id, and by content when the id is empty), device-only rows that a row of the same file, an
earlier file of the same import or an earlier import links to a user, and files with or
without the optional columns (`os`, `properties`: the staging table of an events file holds
only the columns the file has). The model computes what must be stored: summary counts, the
events with their attached users, the device identities (first user wins) and the users'
first / last seen and current os.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcrm import api
from mcrm.db import connect
from tests.conftest import NOW, WorkspaceFactory, check_invariant

START = dt.datetime(2024, 1, 1)
FUTURE = (NOW.replace(tzinfo=None) + dt.timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Row:
    eid: str
    user: str
    anon: str
    name: str
    ts: str  # "bad", "future" or minutes after START
    platform: str
    props: str


rows_st = st.builds(
    Row,
    eid=st.sampled_from(["", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"]),
    user=st.sampled_from(["", "", "u1", "u2", "u3"]),
    anon=st.sampled_from(["", "d1", "d2", "d3", "d4"]),
    name=st.sampled_from(["open", "buy", "", "open"]),
    ts=st.one_of(
        st.integers(0, 40).map(str),
        st.sampled_from(["bad", "future"]),
        st.integers(0, 40).map(str),
    ),
    platform=st.sampled_from(["ios", "android", "", "tv"]),
    props=st.sampled_from(["", '{"a": 1}', '{"b": [2]}', "{bad"]),
)


@dataclass(frozen=True)
class File:
    rows: tuple[Row, ...]
    has_os: bool
    has_props: bool


files_st = st.builds(
    File,
    rows=st.lists(
        st.one_of(rows_st, rows_st, rows_st),
        min_size=1,
        max_size=14,
    ).map(lambda rs: tuple(rs + rs[: len(rs) // 4])),  # some exact repeats
    has_os=st.booleans(),
    has_props=st.booleans(),
)
imports_st = st.lists(st.lists(files_st, min_size=1, max_size=2), min_size=1, max_size=3)


def ts_of(r: Row) -> dt.datetime:
    return START + dt.timedelta(minutes=int(r.ts))


def os_of(r: Row) -> str:
    # a function of the timestamp: rows of one user at one moment agree on the os
    return f"os{int(r.ts) % 3}"


def csv_text(f: File) -> str:
    cols = ["event_id", "user_id", "anonymous_id", "name", "timestamp", "platform"]
    cols += ["os"] * f.has_os + ["properties"] * f.has_props
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in f.rows:
        ts = {"bad": "not a time", "future": FUTURE}.get(r.ts)
        if ts is None:
            ts = ts_of(r).strftime("%Y-%m-%d %H:%M:%S")
        vals = [r.eid, r.user, r.anon, r.name, ts, r.platform]
        if f.has_os:
            vals.append("" if r.ts in ("bad", "future") else os_of(r))
        if f.has_props:
            vals.append(r.props)
        w.writerow(vals)
    return out.getvalue()


@dataclass
class Seen:
    first: dt.datetime
    last: dt.datetime
    os: str | None


class Model:
    def __init__(self) -> None:
        self.events: dict[object, list[Any]] = {}  # key -> [user, anon, name, ts]
        self.devices: dict[str, str] = {}  # device identity -> user (first wins)
        self.users: dict[str, Seen] = {}

    def file(self, f: File) -> tuple[int, int, int, int]:
        good: list[Row] = []
        rejected = 0
        for r in f.rows:
            bad = (
                r.ts in ("bad", "future")
                or not r.name
                or (not r.user and not r.anon)
                or r.platform == "tv"
                or (f.has_props and r.props == "{bad")
            )
            if bad:
                rejected += 1
            else:
                good.append(r)
        # users of device-only rows: a stored link, else the first user of the device here
        links: dict[str, tuple[dt.datetime, str]] = {}
        for r in good:
            if r.user and r.anon:
                cand = (ts_of(r), r.user)
                links[r.anon] = min(links.get(r.anon, cand), cand)
        uids: list[str | None] = []
        for r in good:
            if r.user:
                uids.append(r.user)
            elif r.anon in self.devices:
                uids.append(self.devices[r.anon])
            else:
                uids.append(links[r.anon][1] if r.anon in links else None)
        inserted, seen = 0, set()
        for r, u in zip(good, uids, strict=True):
            props = r.props if f.has_props and r.props else None
            key = r.eid or ("h", r.user, r.anon, r.name, ts_of(r), props)
            if key in self.events or key in seen:
                continue
            seen.add(key)
            self.events[key] = [u, r.anon or None, r.name, ts_of(r)]
            inserted += 1
        # device identities (first user by time, then id) and users, from every good row
        first: dict[str, tuple[dt.datetime, str]] = {}
        per_user: dict[str, Seen] = {}
        for r, u in zip(good, uids, strict=True):
            if u is None:
                continue
            t = ts_of(r)
            if r.anon:
                first[r.anon] = min(first.get(r.anon, (t, u)), (t, u))
            agg = per_user.setdefault(u, Seen(t, t, None))
            if f.has_os and (agg.os is None or t >= agg.last):
                agg.os = os_of(r)
            agg.first, agg.last = min(agg.first, t), max(agg.last, t)
        for anon, (_t, u) in first.items():
            self.devices.setdefault(anon, u)
        for u, new in per_user.items():
            old = self.users.get(u)
            if old is None:
                self.users[u] = new
            elif new.first < old.first or new.last > old.last:
                if new.last >= old.last:
                    old.os = new.os or old.os
                old.first, old.last = min(old.first, new.first), max(old.last, new.last)
        return len(f.rows), inserted, len(good) - inserted, rejected

    def end_of_import(self) -> None:
        for e in self.events.values():
            if e[0] is None and e[1] in self.devices:
                e[0] = self.devices[e[1]]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(imports=imports_st)
def test_events_imports_match_the_model(
    workspace: WorkspaceFactory, imports: list[list[File]]
) -> None:
    w = workspace({"timezone": "UTC"})
    model = Model()
    n = 0
    for files in imports:
        names = []
        for f in files:
            n += 1
            names.append(f"f{n}.csv")
            w.write(names[-1], csv_text(f))
        res = api.import_files(w.ws, "events", names, cwd=w.root, now=NOW)
        for f, summary in zip(files, res.files, strict=True):
            check_invariant(summary)
            expect = model.file(f)
            got = (summary.rows_read, summary.inserted, summary.duplicates, summary.rejected)
            assert got == expect
            assert summary.updated == 0
        model.end_of_import()
    con = connect(str(w.ws.db_path), read_only=True)
    try:
        events = con.execute("SELECT user_id, anonymous_id, name, ts FROM events").fetchall()
        devices = con.execute(
            "SELECT value, user_id FROM identities WHERE kind = 'device'"
        ).fetchall()
        users = con.execute("SELECT user_id, first_seen, last_seen, os FROM users").fetchall()
    finally:
        con.close()
    assert sorted(events, key=repr) == sorted((tuple(e) for e in model.events.values()), key=repr)
    assert dict(devices) == model.devices
    assert {u[0]: Seen(*u[1:]) for u in users} == model.users
