"""Where one `plan_campaign` of the `campaigns.plan` bench spends its time, statement by
statement.

`python -m benchmarks.profile_campaigns [--scale small|full] [--top N] [--all] [--sql FILE]
[--render]`

Uses the bench's workspace (`benchmarks/.data/campaigns-<scale>/`, built on first use) and the
same timing proxy around `mcrm.db.connect` as `benchmarks.profile_import`. The plan tables are
emptied first, as before every timed run. `--render` plans with `render=True` (the default of
`mcrm campaigns plan`: every planned message rendered), which the bench's target excludes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_campaigns as B
from benchmarks.core import DATA_DIR, SCALES, Context
from benchmarks.profile_import import Stmt, TimingConnection, _short, report


def profile_plan(root: Path, render: bool) -> tuple[float, float, list[Stmt], Any]:
    import mcrm.db
    from mcrm.campaigns.engine import plan_campaign
    from mcrm.config import open_workspace

    B.reset_plans(root)
    log: list[Stmt] = []
    real = mcrm.db.connect

    def connect(p: str, read_only: bool = False) -> Any:
        return TimingConnection(real(p, read_only), log)

    mcrm.db.connect = connect  # type: ignore[assignment]
    try:
        ws = open_workspace(str(root), {}, root)
        c0, t0 = time.process_time(), time.perf_counter()
        res = plan_campaign(ws, B.CAMPAIGN, B.AS_OF, render=render)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        mcrm.db.connect = real
    return total, cpu, log, res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_campaigns")
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--all", action="store_true", help="also list every statement in order")
    p.add_argument("--sql", type=Path, metavar="FILE", help="write every statement in full")
    p.add_argument("--render", action="store_true", help="plan with render=True")
    args = p.parse_args(argv)
    ctx = Context(args.scale, DATA_DIR, sys.executable, "mcrm")
    pw = B.plan_workspace(ctx)
    total, cpu, log, res = profile_plan(pw.root, args.render)
    print(
        f"plan_campaign(render={args.render}) on {pw.rows}: audience {res.audience:,}, "
        f"planned {res.planned:,}"
    )
    print(report(total, cpu, log, args.top))
    if args.sql:
        args.sql.write_text(
            "".join(f"-- {st.seconds:.3f} s  {st.caller}\n{st.sql.strip()};\n\n" for st in log)
        )
    if args.all:
        print("\nevery statement, in order:")
        for st in log:
            print(f"  {st.seconds:8.3f} s {st.cpu:7.3f} s  {_short(st.sql, 110)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
