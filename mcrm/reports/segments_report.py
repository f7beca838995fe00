"""`mcrm report segments`: segment sizes over time, with entries and exits (analytics.md §10).

One row per stored snapshot of a segment (`segment_snapshots` of a `segment_runs` run) whose
as-of instant falls in the period. Snapshots of a segment are ordered by (as_of, run_id): the
time they describe, then the order they were computed in (a backfill with `--as-of` slots into
its place). Entries = members(run) \\ members(previous snapshot), exits the reverse; the previous
snapshot may lie before the period. The first snapshot of a segment has none (null), and the
report says so when a segment has fewer than two. `definition_changed` flags a snapshot whose
definition hash differs from the previous one: its entries and exits then mix behaviour and
the edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcrm.errors import UsageError, did_you_mean
from mcrm.output import Rows
from mcrm.reports.common import Period, Report
from mcrm.reports.overview import fetch

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace

COLUMNS = [
    "segment",
    "run_id",
    "as_of",
    "size",
    "previous_run_id",
    "entries",
    "exits",
    "net_change",
    "definition_changed",
]


def build(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    period: Period,
    names: list[str] | None = None,
) -> Report:
    """Table `segments`: one row per segment per snapshot run in the period."""
    from mcrm.segments.compile import lit, ts_lit

    known = sorted(str(r[0]) for r in fetch(con, "SELECT DISTINCT segment FROM segment_snapshots"))
    for n in names or []:
        if n not in known:
            raise UsageError(
                f"segment '{n}' has no stored snapshot",
                hint=did_you_mean(n, known) or f"compute it first: mcrm segments compute {n}",
            )
    only = f"AND s.segment IN ({', '.join(lit(n) for n in names)})" if names else ""
    snaps = (
        "SELECT s.segment, s.run_id, r.as_of, s.size, s.definition_hash AS h, "
        "LAG(s.run_id) OVER (PARTITION BY s.segment ORDER BY r.as_of, s.run_id) AS prev, "
        "LAG(s.definition_hash) OVER (PARTITION BY s.segment ORDER BY r.as_of, s.run_id) AS ph "
        f"FROM segment_snapshots s JOIN segment_runs r ON r.run_id = s.run_id WHERE TRUE {only}"
    )
    in_p = f"n.as_of >= {ts_lit(period.start_ts)} AND n.as_of <= {ts_lit(period.end_ts)}"

    def moved(a: str, b: str) -> str:
        """Members of snapshot `a` not in snapshot `b` (a, b: run id columns of n)."""
        return (
            "SELECT n.segment, n.run_id, count(*) AS c FROM sn n JOIN segment_members m "
            f"ON m.run_id = n.{a} AND m.segment = n.segment LEFT JOIN segment_members o "
            f"ON o.run_id = n.{b} AND o.segment = n.segment AND o.user_id = m.user_id "
            f"WHERE n.prev IS NOT NULL AND {in_p} AND o.user_id IS NULL "
            "GROUP BY n.segment, n.run_id"
        )

    sql = (
        f"WITH sn AS ({snaps}), ent AS ({moved('run_id', 'prev')}), "
        f"ext AS ({moved('prev', 'run_id')}) "
        "SELECT n.segment, n.run_id, n.as_of, n.size, n.prev, "
        "CASE WHEN n.prev IS NULL THEN NULL ELSE coalesce(en.c, 0) END, "
        "CASE WHEN n.prev IS NULL THEN NULL ELSE coalesce(ex.c, 0) END, "
        "n.prev IS NOT NULL AND n.h IS DISTINCT FROM n.ph "
        "FROM sn n LEFT JOIN ent en ON en.segment = n.segment AND en.run_id = n.run_id "
        "LEFT JOIN ext ex ON ex.segment = n.segment AND ex.run_id = n.run_id "
        f"WHERE {in_p} ORDER BY n.segment, n.as_of, n.run_id"
    )
    rows: list[tuple[Any, ...]] = []
    for seg, run, as_of, size, prev, ent, ex, changed in fetch(con, sql):
        net = None if ent is None else int(ent) - int(ex)
        rows.append((seg, int(run), as_of, int(size), prev, ent, ex, net, bool(changed)))
    notes: list[str] = []
    if not known:
        notes.append("no segment snapshots stored yet: run mcrm segments compute")
    elif not rows:
        notes.append("no segment snapshot in the period (see --from / --to)")
    stored = {
        str(r[0]): int(r[1])
        for r in fetch(con, "SELECT segment, count(*) FROM segment_snapshots GROUP BY segment")
    }
    thin = sorted(s for s in (names or known) if stored.get(s, 0) < 2)
    if known and thin:
        shown = ", ".join(thin[:10]) + (f" and {len(thin) - 10} more" if len(thin) > 10 else "")
        notes.append(
            f"fewer than two snapshots stored for {shown}: entries and exits need a "
            "previous snapshot (the first one has none)"
        )
    params = {**period.params(), "segments": list(names or [])}
    return Report("segments", {"segments": Rows(COLUMNS, rows, title="segments")}, params, notes)
