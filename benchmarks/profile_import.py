"""Where an `mcrm import events` spends its time, statement by statement.

`python -m benchmarks.profile_import [--scale small|full] [--input FILE] [--top N]`

Wraps the connection `mcrm.db.connect` returns in a proxy that times every `execute` /
`executemany` (and the `fetchall` after it, and `close`, which checkpoints), and names the mcrm
function that issued each statement. Nothing in mcrm changes; the proxy exists only for the
length of one import.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.bench_import import make_workspace
from benchmarks.core import DATA_DIR, SCALES, Context


@dataclass
class Stmt:
    seconds: float
    sql: str
    caller: str
    cpu: float = 0.0


def _caller() -> str:
    """The innermost mcrm frame outside db.py (the function that issued the statement)."""
    f = sys._getframe(2)
    chain: list[str] = []
    while f is not None and len(chain) < 3:
        mod = f.f_globals.get("__name__", "")
        if mod.startswith("mcrm.") and mod != "mcrm.db":
            chain.append(f"{mod.removeprefix('mcrm.')}.{f.f_code.co_name}:{f.f_lineno}")
        f = f.f_back  # type: ignore[assignment]
    return " < ".join(chain) or "?"


class TimingConnection:
    """Forwards to a DuckDB connection, timing each statement."""

    def __init__(self, con: Any, log: list[Stmt]) -> None:
        self._con = con
        self._log = log

    def _timed(self, label: str, caller: str, fn: Any, *args: Any, **kw: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(*args, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        self._log.append(Stmt(wall, label, caller, cpu))
        return out

    def execute(self, sql: str, *args: Any, **kw: Any) -> TimingConnection:
        self._timed(sql, _caller(), self._con.execute, sql, *args, **kw)
        return self

    def executemany(self, sql: str, *args: Any, **kw: Any) -> TimingConnection:
        self._timed("[executemany] " + sql, _caller(), self._con.executemany, sql, *args, **kw)
        return self

    def fetchall(self) -> list[Any]:
        c0, t0 = time.process_time(), time.perf_counter()
        rows: list[Any] = self._con.fetchall()
        if self._log:
            self._log[-1].seconds += time.perf_counter() - t0
            self._log[-1].cpu += time.process_time() - c0
        return rows

    def close(self) -> None:
        self._timed("[close: checkpoint]", "db.open_db", self._con.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _short(sql: str, width: int = 150) -> str:
    one = re.sub(r"\s+", " ", sql).strip()
    one = re.sub(r"columns=\{[^}]*\}", "columns={...}", one)
    return one if len(one) <= width else one[: width - 3] + "..."


def profile(ws_root: Path, path: Path) -> tuple[float, float, list[Stmt], object]:
    import mcrm.db
    from mcrm import api
    from mcrm.config import open_workspace

    log: list[Stmt] = []
    real = mcrm.db.connect

    def connect(p: str, read_only: bool = False) -> Any:
        return TimingConnection(real(p, read_only), log)

    mcrm.db.connect = connect  # type: ignore[assignment]
    try:
        ws = open_workspace(str(ws_root), {}, ws_root)
        c0, t0 = time.process_time(), time.perf_counter()
        res = api.import_files(ws, "events", [str(path)], cwd=ws_root)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        mcrm.db.connect = real
    return total, cpu, log, res


def report(total: float, cpu: float, log: list[Stmt], top: int) -> str:
    lines = [
        f"total {total:.2f} s wall, {cpu:.2f} s CPU; statements "
        f"{sum(s.seconds for s in log):.2f} s wall ({len(log)} statements)",
        "",
        "by caller:      wall  share       CPU",
    ]
    by_caller: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in log:
        acc = by_caller[s.caller.split(" < ")[0].rsplit(":", 1)[0]]
        acc[0] += s.seconds
        acc[1] += s.cpu
    for name, (secs, c) in sorted(by_caller.items(), key=lambda kv: -kv[1][0]):
        if secs >= 0.01:
            lines.append(f"  {secs:8.2f} s  {100 * secs / total:5.1f}%  {c:7.2f} s  {name}")
    lines += ["", f"top {top} statements (wall, CPU):"]
    for s in sorted(log, key=lambda s: -s.seconds)[:top]:
        lines.append(f"  {s.seconds:8.2f} s {s.cpu:7.2f} s  {s.caller}")
        lines.append(f"                      {_short(s.sql)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_import")
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--input", type=Path, metavar="FILE", help="events CSV (default: generated)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--all", action="store_true", help="also list every statement in order")
    p.add_argument("--sql", type=Path, metavar="FILE", help="write every statement in full")
    args = p.parse_args(argv)
    ctx = Context(args.scale, DATA_DIR, sys.executable, "mcrm")
    files = data.external("events", args.input) if args.input else data.ensure(ctx, data.IMPORT)
    root = make_workspace(ctx, "profile-import")
    try:
        total, cpu, log, res = profile(root, files["events"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{files['events']}: {files.rows['events']:,} rows; {res}")
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
