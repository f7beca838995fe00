"""Where one `mcrm send` of the `dispatch.fcm` / `dispatch.sendgrid` benches spends its time.

`python -m benchmarks.profile_dispatch fcm|sendgrid [--scale small|full] [--n N]
[--concurrency K] [--batch B] [--stub-wire] [--top N] [--pstats FILE] [--sql] [--no-profile]`

Uses the bench's workspace and fake (a separate process), plans once and empties the send
tables as before every timed run, then runs `mcrm.dispatch.send.send` once under cProfile.
cProfile sees only the thread it runs in, so the FCM lane is profiled with `concurrency: 1`
by default (the adapter then sends on the calling thread; the CPU work is the same, the
eight-thread pool of the bench only overlaps waiting). `--concurrency 8` times that instead
(no profile of the workers). The report groups the profile's own time (tottime) by area
(requests / urllib3 / http.client, json, Jinja and the renderer, DuckDB calls by mcrm
caller, pyarrow, the rest), then lists the top functions by cumulative and own time.
`--sql` also times every DuckDB statement (the proxy of `benchmarks.profile_import`): DuckDB's
methods are not seen by cProfile (pybind11), so their time is the *own* time of the mcrm
function that called them (`claim`, `_addresses`, `settle`, `_fetch`, `drain`).
`--stub-wire` keeps the whole pipeline and the adapter's request bodies but answers every
request at once without HTTP (FCM: `Fcm._one` builds the body and returns sent; SendGrid:
`_send_request` builds the body and returns sent), so the wall time is what the pipeline costs
without the wire.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_dispatch as B
from benchmarks.core import DATA_DIR, SCALES, Context

AREAS = (  # (area, substrings of the profiled function's file or name), first match wins
    ("duckdb (execute / fetch)", ("duckdb", "DuckDBPyConnection")),
    ("requests + urllib3 + http.client + socket", ("requests/", "urllib3/", "http/client",
                                                    "socket.py", "ssl.py", "<method 'recv",
                                                    "<method 'sendall", "selectors.py",
                                                    "email/", "netrc", "urllib/")),
    ("json", ("json/", "<built-in method _json")),
    ("jinja2 + markupsafe", ("jinja2/", "markupsafe", "<template>")),
    ("babel", ("babel/",)),
    ("pyarrow", ("pyarrow",)),
    ("mcrm.campaigns (render, context)", ("mcrm/campaigns/",)),
    ("mcrm.dispatch", ("mcrm/dispatch/",)),
    ("google-auth / cryptography", ("google/", "cryptography", "rsa/")),
    ("hashlib / hmac / uuid", ("hashlib", "hmac", "uuid", "<built-in method _hashlib")),
    ("threading / queue", ("threading.py", "queue.py", "concurrent/", "<method 'acquire")),
)  # fmt: skip


def area_of(func: tuple[str, int, str]) -> str:
    where = f"{func[0]}:{func[2]}"
    for name, keys in AREAS:
        if any(k in where for k in keys):
            return name
    return "other"


def report(stats: pstats.Stats, top: int) -> str:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    by_area: dict[str, float] = {}
    for func, (_cc, _nc, tt, _ct, _callers) in raw.items():
        a = area_of(func)
        by_area[a] = by_area.get(a, 0.0) + tt
    lines = [f"own time by area (of {total:.2f} s profiled):"]
    for a, t in sorted(by_area.items(), key=lambda x: -x[1]):
        lines.append(f"  {t:8.2f} s  {100 * t / total:5.1f} %  {a}")
    # the mcrm functions by cumulative time: the pipeline's steps
    lines.append("\nmcrm functions by cumulative time:")
    mc = [(f, v) for f, v in raw.items() if "/mcrm/" in f[0]]
    for f, v in sorted(mc, key=lambda x: -x[1][3])[:top]:
        short = f[0].split("/mcrm/", 1)[1]
        lines.append(
            f"  {v[3]:8.2f} s  {100 * v[3] / total:5.1f} %  {v[1]:>9,} calls  "
            f"mcrm/{short}:{f[1]} {f[2]}"
        )
    lines.append("\ntop functions by own time:")
    for f, v in sorted(raw.items(), key=lambda x: -x[1][2])[:top]:
        where = f[0].split("site-packages/", 1)[-1].split("/mcrm/", 1)[-1]
        lines.append(
            f"  {v[2]:8.2f} s  {100 * v[2] / total:5.1f} %  {v[1]:>9,} calls  "
            f"{where}:{f[1]} {f[2]}"
        )
    return "\n".join(lines)


def statements(log: list[Any], top: int) -> str:
    """The statements grouped by the line that issues them: count, total and mean."""
    from benchmarks.profile_import import _short

    groups: dict[str, list[Any]] = {}
    for st in log:
        groups.setdefault(st.caller.split(" < ")[0], []).append(st)
    lines = ["\nstatements by issuing line:   calls     total      mean"]
    for caller, sts in sorted(groups.items(), key=lambda kv: -sum(s.seconds for s in kv[1])):
        tot = sum(s.seconds for s in sts)
        lines.append(
            f"  {caller:42} {len(sts):6,} {tot:8.2f} s {1000 * tot / len(sts):7.2f} ms  "
            f"{_short(sts[0].sql, 60)}"
        )
    return "\n".join(lines[: top + 1])


def stub_wire() -> None:
    """Requests answered in-process: the bodies are built, nothing goes on the wire."""
    import json

    from mcrm.dispatch.core import Outcome, Result
    from mcrm.dispatch.fcm import Fcm
    from mcrm.dispatch.sendgrid import SendGrid

    def one(self: Fcm, m: Any) -> Result:
        json.dumps(self.body(m), ensure_ascii=False, separators=(",", ":")).encode()
        return Result(m.outbox_id, Outcome.SENT, provider_message_id="stub")

    def request(self: SendGrid, r: Any) -> list[Result]:
        self._body(r, list(range(len(r.members))))
        return [Result(x.m.outbox_id, Outcome.SENT, provider_message_id="stub") for x in r.members]

    Fcm._one = one  # type: ignore[method-assign]
    SendGrid._send_request = request  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_dispatch")
    p.add_argument("kind", choices=("fcm", "sendgrid"))
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--n", type=int, help="messages (default: the bench's size at --scale)")
    p.add_argument("--concurrency", type=int, default=1, help="FCM threads (default 1)")
    p.add_argument("--batch", type=int, help="the lane's batch: option")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--pstats", type=Path, metavar="FILE", help="also dump the raw profile")
    p.add_argument("--sql", action="store_true", help="time every DuckDB statement too")
    p.add_argument("--no-profile", action="store_true", help="only time the send")
    p.add_argument("--stub-wire", action="store_true", help="answer requests without HTTP")
    args = p.parse_args(argv)
    ctx = Context(args.scale, DATA_DIR, sys.executable, "mcrm")
    campaign = B.PUSH if args.kind == "fcm" else B.EMAIL
    n = args.n or ctx.size(B.FCM_N if args.kind == "fcm" else B.SG_N)
    w = B.workspace(ctx, campaign, n)
    scratch = ctx.scratch("profile_dispatch")
    with B.FakeProcess(args.kind, scratch) as fake:
        providers = B.fcm_providers(fake) if args.kind == "fcm" else B.sendgrid_providers(fake)
        if args.kind == "fcm":
            providers += f"    concurrency: {args.concurrency}\n"
        if args.batch:
            providers += f"    batch: {args.batch}\n"
        B.write_files(w.root, campaign, providers)
        plan_file = B.plan(w)
        B.reset_send(w)
        from mcrm.dispatch.send import send

        if args.stub_wire:
            stub_wire()
        ws = w.ws()
        log: list[Any] = []
        real: Any = None
        if args.sql:
            import mcrm.db
            from benchmarks.profile_import import TimingConnection

            real = mcrm.db.connect

            def connect(path: str, read_only: bool = False) -> Any:
                return TimingConnection(real(path, read_only), log)

            mcrm.db.connect = connect
        prof = cProfile.Profile()
        f0 = fake.cpu()
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            if args.no_profile:
                res = send(ws, campaign, plan_file=plan_file, now=B.AS_OF)
            else:
                res = prof.runcall(send, ws, campaign, plan_file=plan_file, now=B.AS_OF)
        finally:
            if real is not None:
                import mcrm.db

                mcrm.db.connect = real
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        fake_cpu = fake.cpu() - f0
    print(
        f"send {campaign}: {n:,} messages, outcomes {res.outcomes}; {wall:.2f} s wall "
        f"({n / wall:,.0f}/s), {cpu:.2f} s CPU of this process, fake {fake_cpu:.2f} CPU s"
        + (" (under cProfile: slower than the bench)" if not args.no_profile else "")
    )
    if args.sql:
        from benchmarks.profile_import import report as sql_report

        print(sql_report(wall, cpu, log, args.top))
        print(statements(log, args.top))
    if not args.no_profile:
        stats = pstats.Stats(prof)
        if args.pstats:
            stats.dump_stats(str(args.pstats))
        print(report(stats, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
