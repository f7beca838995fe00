"""Where `segments compute` (every segment of the example file) and mcrm's RFM spend their
time, statement by statement.

`python -m benchmarks.profile_segments [--scale small|full] [--top N] [--all] [--sql FILE]`

Uses the benchmark workspace of `bench_segments` (imported on first use) and the same timing
proxy around `mcrm.db.connect` as `benchmarks.profile_import`. Then, on the RFM benchmark's
1.4M purchases, times the parts of `rfm_sql` separately (the per-customer aggregation, the
time-zone conversion, the NTILE scoring and its md5 tie-break), each as a TEMP table, best of 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_segments as B
from benchmarks.core import DATA_DIR, SCALES, Context
from benchmarks.profile_import import Stmt, TimingConnection, _short, report


def profile_compute(root: Path) -> tuple[float, float, list[Stmt], Any]:
    import mcrm.db
    from mcrm.config import open_workspace
    from mcrm.segments import engine

    B.reset_snapshots(root)
    log: list[Stmt] = []
    real = mcrm.db.connect

    def connect(p: str, read_only: bool = False) -> Any:
        return TimingConnection(real(p, read_only), log)

    mcrm.db.connect = connect  # type: ignore[assignment]
    try:
        ws = open_workspace(str(root), {}, root)
        c0, t0 = time.process_time(), time.perf_counter()
        res = engine.compute(ws, None, as_of=B.scale_end())
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        mcrm.db.connect = real
    return total, cpu, log, res


def rfm_parts(db: Path) -> list[tuple[str, float]]:
    """Best-of-3 wall seconds of `rfm_sql` and of its parts, on the RFM benchmark's rows."""
    import mcrm.db
    from mcrm.segments.analytics import rfm_sql
    from mcrm.segments.compile import date_lit, local_day

    c = B.rfm_ctx(B.scale_end())
    day = local_day("p.ts", c.zone)
    today = date_lit(c.d_local)
    where = (
        f"p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {c.d} "
        f"AND p.ts >= {c.ago(c.seg.rfm.window_days)}"
    )
    base = (
        f"SELECT p.user_id, date_diff('day', max({day}), {today}) AS recency_days, "
        f"count(DISTINCT {day}) AS frequency, CAST(sum(p.amount_base) AS DECIMAL(18,3)) "
        f"AS monetary FROM purchases p WHERE {where} GROUP BY p.user_id"
    )
    utc_day = "CAST(p.ts AS DATE)"
    parts = [
        ("rfm_sql(ctx) as mcrm materialises it", rfm_sql(c)),
        ("  aggregation per customer (as in rfm_sql)", base),
        ("  same, days in UTC (no zone conversion)", base.replace(day, utc_day)),
        (
            "  same, zone conversion once per row (subquery)",
            f"SELECT user_id, date_diff('day', max(d), {today}) AS recency_days, "
            "count(DISTINCT d) AS frequency, CAST(sum(a) AS DECIMAL(18,3)) AS monetary FROM "
            f"(SELECT p.user_id, {day} AS d, p.amount_base AS a FROM purchases p "
            f"WHERE {where}) GROUP BY user_id",
        ),
        (
            "  NTILE x3, tie-break md5(user_id), user_id (as in rfm_sql)",
            "SELECT user_id, "
            "NTILE(5) OVER (ORDER BY recency_days DESC, md5(user_id), user_id) AS r, "
            "NTILE(5) OVER (ORDER BY frequency ASC, md5(user_id), user_id) AS f, "
            "NTILE(5) OVER (ORDER BY monetary ASC, md5(user_id), user_id) AS m FROM agg",
        ),
        (
            "  NTILE x3, tie-break user_id only",
            "SELECT user_id, NTILE(5) OVER (ORDER BY recency_days DESC, user_id) AS r, "
            "NTILE(5) OVER (ORDER BY frequency ASC, user_id) AS f, "
            "NTILE(5) OVER (ORDER BY monetary ASC, user_id) AS m FROM agg",
        ),
        (
            "  NTILE x3, tie-break hash(user_id) (DuckDB-only, UBIGINT)",
            "SELECT user_id, NTILE(5) OVER (ORDER BY recency_days DESC, h, user_id) AS r, "
            "NTILE(5) OVER (ORDER BY frequency ASC, h, user_id) AS f, "
            "NTILE(5) OVER (ORDER BY monetary ASC, h, user_id) AS m "
            "FROM (SELECT *, hash(user_id) AS h FROM agg)",
        ),
        ("  md5(user_id) alone", "SELECT user_id, md5(user_id) AS h FROM agg"),
    ]
    con = mcrm.db.connect(str(db), read_only=True)
    out = []
    try:
        con.execute(f"CREATE TEMP TABLE agg AS {base}")
        for label, sql in parts:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                con.execute(f"CREATE OR REPLACE TEMP TABLE x AS {sql}")
                best = min(best, time.perf_counter() - t0)
            out.append((label, best))
    finally:
        con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_segments")
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--all", action="store_true", help="also list every statement in order")
    p.add_argument("--sql", type=Path, metavar="FILE", help="write every statement in full")
    p.add_argument("--no-rfm", action="store_true", help="skip the RFM breakdown")
    args = p.parse_args(argv)
    ctx = Context(args.scale, DATA_DIR, sys.executable, "mcrm")
    imp = B.workspace(ctx)
    total, cpu, log, res = profile_compute(imp.root)
    print(f"segments compute on {imp.rows}: {len(res.sizes)} segments")
    print(report(total, cpu, log, args.top))
    if args.sql:
        args.sql.write_text(
            "".join(f"-- {st.seconds:.3f} s  {st.caller}\n{st.sql.strip()};\n\n" for st in log)
        )
    if args.all:
        print("\nevery statement, in order:")
        for st in log:
            print(f"  {st.seconds:8.3f} s {st.cpu:7.3f} s  {_short(st.sql, 110)}")
    if not args.no_rfm:
        db, n = B.rfm_db(ctx, imp)
        print(f"\nRFM on {n:,} paid purchases (best of 3 each, wall):")
        for label, secs in rfm_parts(db):
            print(f"  {secs:7.3f} s  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
