"""Data builders for the segments tests: a temporary workspace fed with canonical CSVs.

Tests describe rows as dicts; `SegWS.load` writes them as a CSV (JSON columns serialised,
`None` as an empty cell) and imports them through `mcrm.api.import_files` at a fixed import
moment, so the segments code sees exactly what a real import would give it. Timestamps are
always written in UTC with a `Z`, whatever the workspace zone, so a test's instants do not
depend on the zone it configures.

`SegWS.segment(where, as_of)` writes a one-segment `segments.yaml`, computes it and returns its
members: the short form most predicate tests need.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from mcrm.config import Workspace, open_workspace
from mcrm.ingest.run import ImportResult
from mcrm.segments.engine import ComputeResult

IMPORT_NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
"""Import moment for every test import: later than any generated row (never the wall clock)."""

JSON_COLUMNS = {"attributes", "properties", "items"}


def iso(t: dt.datetime) -> str:
    """A naive-UTC datetime as `YYYY-MM-DDTHH:MM:SSZ`."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date(t: dt.datetime, zone: str) -> dt.date:
    """The calendar date of a naive-UTC instant in `zone`."""
    return t.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).date()


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as CSV text; the header is the union of keys in first-seen order."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        out = []
        for c in cols:
            v = r.get(c)
            if v is None:
                out.append("")
            elif c in JSON_COLUMNS and not isinstance(v, str):
                out.append(json.dumps(v))
            elif isinstance(v, dt.datetime):
                out.append(iso(v))
            elif isinstance(v, bool):
                out.append("true" if v else "false")
            else:
                out.append(str(v))
        w.writerow(out)
    return buf.getvalue()


class SegWS:
    """A temporary workspace for segment tests."""

    def __init__(self, root: Path, timezone: str = "UTC", base_currency: str = "EUR") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "mcrm.yaml").write_text(
            yaml.safe_dump({"timezone": timezone, "base_currency": base_currency}),
            encoding="utf-8",
        )
        self.timezone = timezone
        self.ws: Workspace = open_workspace(str(root), {}, root)
        self._files = 0

    # -- data ----------------------------------------------------------------------------

    def load(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> ImportResult:
        """Import rows of one kind; every row must be accepted."""
        from mcrm import api

        self._files += 1
        path = self.root / f"{kind}_{self._files}.csv"
        path.write_text(to_csv(rows), encoding="utf-8")
        res = api.import_files(self.ws, kind, [str(path)], cwd=self.root, now=IMPORT_NOW)
        rejected = sum(f.rejected for f in res.files)
        assert rejected == 0, f"{kind}: {rejected} row(s) rejected"
        return res

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        from mcrm.db import connect

        con = connect(str(self.ws.db_path), read_only=True)
        try:
            cur = con.execute(sql, list(params)) if params else con.execute(sql)
            return list(cur.fetchall())
        finally:
            con.close()

    # -- segments ------------------------------------------------------------------------

    def write_segments(self, spec: Mapping[str, Any] | str) -> None:
        text = spec if isinstance(spec, str) else yaml.safe_dump(dict(spec), sort_keys=False)
        (self.root / "segments.yaml").write_text(text, encoding="utf-8")

    def compute(self, names: list[str] | None, as_of: dt.datetime) -> ComputeResult:
        from mcrm.segments.engine import compute

        return compute(self.ws, names, as_of=as_of)

    def members(self, run_id: int, segment: str) -> set[str]:
        rows = self.query(
            "SELECT user_id FROM segment_members WHERE run_id = ? AND segment = ?",
            [run_id, segment],
        )
        return {str(r[0]) for r in rows}

    def compute_members(
        self, names: Iterable[str], as_of: dt.datetime
    ) -> tuple[ComputeResult, dict[str, set[str]]]:
        names = list(names)
        res = self.compute(names, as_of)
        return res, {n: self.members(res.run_id, n) for n in names}

    def segment(
        self,
        where: Mapping[str, Any],
        as_of: dt.datetime,
        top: Mapping[str, Any] | None = None,
    ) -> set[str]:
        """Members of a one-segment file `{**top, segments: {s: {where: ...}}}` as of D."""
        self.write_segments({**(top or {}), "segments": {"s": {"where": dict(where)}}})
        res = self.compute(["s"], as_of)
        return self.members(res.run_id, "s")

    def user_ids(self) -> set[str]:
        return {str(r[0]) for r in self.query("SELECT user_id FROM users")}


# ---------------------------------------------------------------------------------------------
# independent references (plain Python; the spec's definitions, not the SQL)


def ntile5(ordered: Sequence[str]) -> dict[str, int]:
    """NTILE(5) over an already ordered sequence: n = 5q + s, the first s buckets get q + 1."""
    n = len(ordered)
    q, s = divmod(n, 5)
    sizes = [q + 1 if i < s else q for i in range(5)]
    out: dict[str, int] = {}
    i = 0
    for bucket, size in enumerate(sizes, start=1):
        for uid in ordered[i : i + size]:
            out[uid] = bucket
        i += size
    return out


RF10_TABLE: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    # written from SPEC §4.2 (not imported from mcrm) so the test is independent
    "champions": ((5, 5), (4, 5)),
    "loyal_customers": ((3, 4), (4, 5)),
    "potential_loyalists": ((4, 5), (2, 3)),
    "new_customers": ((5, 5), (1, 1)),
    "promising": ((4, 4), (1, 1)),
    "need_attention": ((3, 3), (3, 3)),
    "about_to_sleep": ((3, 3), (1, 2)),
    "at_risk": ((1, 2), (3, 4)),
    "cant_lose_them": ((1, 2), (5, 5)),
    "hibernating": ((1, 2), (1, 2)),
}


def rfm_segment_name(r: int, f: int, scheme: str) -> str:
    if scheme == "rfm11" and r == 1 and f == 1:
        return "lost"
    names = [
        n for n, ((r0, r1), (f0, f1)) in RF10_TABLE.items() if r0 <= r <= r1 and f0 <= f <= f1
    ]
    assert len(names) == 1, (r, f, names)
    return names[0]
