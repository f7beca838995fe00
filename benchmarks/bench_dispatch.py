"""Dispatch benches (SPEC §6.2): `mcrm send` pushes >= 1,000 messages/s to a local
single-message API (FCM-like), >= 10,000 recipients/s to a batching API (SendGrid-like),
and a 1,000,000-recipient send peaks under 1.5 GB.

Workspaces: one per bench and size in `benchmarks/.data/dispatch-<kind>-<n>/`, the database
generated in DuckDB SQL (deterministic, from the user number): N users `u0000000`…
(first names in several scripts, 10% missing; locale en 40%, cs 20%, zh, bg, it, ru 10%
each, with a matching zone; an e-mail address each), one granted marketing consent each for
the campaign's channel, and for push one device each (push-enabled `tok-<md5>` token, not
invalidated). A `manifest.json` written last marks the database complete. `mcrm.yaml`
(workspace zone UTC, unsubscribe URL and secret, no quiet hours, caps or global control;
the `providers:` entry of the lane, pointing at this run's fake) and `campaigns/` (the
campaign and the repository's `campaigns/welcome/` templates) are re-written every run.
The campaigns have no schedule: `where: {attr: user_id, exists: true}`, reentry always,
purpose marketing; `push_everyone` has the welcome push (title with the user's first name,
body, deeplink), `email_everyone` the welcome e-mail (subject and text / HTML with the
first name and the user's own signed unsubscribe URL; List-Unsubscribe headers).

Each bench plans its campaign once (untimed: `plan_campaign(ws, name, 2026-03-02 09:00 UTC,
render=False)` after emptying the plan tables), then before every timed run empties
`outbox`, `message_events` and `invalid_addresses` (untimed), so every run is the first
send of that plan. The fakes run as a separate process, `python -m tests.fakes fcm|sendgrid
--port 0` (no request log kept; their per-request stderr line goes to /dev/null), started
once per bench and stopped after it; their CPU time per run is read from /proc and noted.

`dispatch.fcm`
    Timed: `mcrm.dispatch.send.send(ws, "push_everyone", plan_file=<the plan>, now=as-of)`
    in this process, for N push messages (20,000 at full scale) through an `fcm` lane
    (service account and token endpoint of the fake; the lane defaults: batch 500, 8 threads):
    enqueue, claim, send-time consent and token checks, contexts and rendering, the FCM
    HTTP v1 body, the requests, settling each batch. The harness's figures are seconds, so
    the line is **seconds per 10,000 messages**, target <= 10 s (>= 1,000 messages/s);
    messages/s are in the note and the JSON. Baseline: a single-threaded loop of
    `requests.Session().post` of the same N bodies (built untimed with the adapter's own
    `Fcm.body` from the same rendered messages) with a valid bearer token to the same fake:
    the bare wire. Best of 3, alternating baseline, mcrm.

`dispatch.sendgrid`
    The same for N e-mails (100,000 at full scale) through a `sendgrid` lane (1,000 rows a
    claim; the adapter factors each batch into requests sharing one content with
    per-recipient substitutions: here two a batch, the Czech templates and the English ones
    the other locales fall back to, so 200 requests at full scale). Line: **seconds per
    100,000 recipients**, target <= 10 s (>= 10,000 recipients/s). Baseline: the same request
    bodies mcrm posts (built untimed by the adapter, `SendGrid._body` of its own grouping, from
    the same rendered messages in 1,000-row batches) posted in a loop with a bare
    `requests.Session`. Best of 3, alternating.

`dispatch.memory`
    `mcrm -q send email_everyone --plan FILE --as-of … --yes` as a subprocess for 1,000,000
    recipients (100,000 at small scale) through the same `sendgrid` lane and fake; the figure
    is the command's peak RSS (`ru_maxrss`), target <= 1536 MB, one run (about 10 minutes at
    full scale). A child's `ru_maxrss` starts at its parent's RSS at fork, and this process
    holds hundreds of MB after planning, so the command is started by a small launcher
    (`python -c LAUNCHER`, 11 MB) that reaps it with `os.wait4` and writes its rusage to a
    file. The same-run reference is the peak RSS of `mcrm outbox stats` on the same workspace
    (start-up, the engine and the database opened), so the ratio reads "a send peaks at N
    times a command that only opens the database". The note gives the wall time and the rate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.core import ROOT, Context, Result, Timing, bench, compare, interleaved, timed

AS_OF = dt.datetime(2026, 3, 2, 9, 0)  # naive UTC
AS_OF_CLI = "2026-03-02T09:00:00Z"
GENERATOR = 1  # bump when the SQL below changes: the workspaces are rebuilt
RUNS = 3

FCM_N = 20_000
FCM_PER = 10_000  # the line is seconds per this many messages
FCM_TARGET_S = 10.0  # per FCM_PER: >= 1,000 messages/s
SG_N = 100_000
SG_PER = 100_000
SG_TARGET_S = 10.0  # per SG_PER: >= 10,000 recipients/s
MEM_N = 1_000_000
MEM_TARGET_MB = 1536.0

PUSH = "push_everyone"
EMAIL = "email_everyone"
SENDER = "Shop <news@shop.example.com>"
CAMPAIGNS = {
    PUSH: """\
description: Everyone, by push (the dispatch benchmark)
where: { attr: user_id, exists: true }
channels: [push]
reentry: always
templates:
  push: { title: welcome/push_title.j2, body: welcome/push_body.j2, deeplink: "shop://home" }
""",
    EMAIL: """\
description: Everyone, by e-mail (the dispatch benchmark)
where: { attr: user_id, exists: true }
channels: [email]
reentry: always
templates:
  email: { subject: welcome/subject.j2, html: welcome/email.html.j2, text: welcome/email.txt.j2 }
""",
}
CONFIG = """\
timezone: UTC
base_currency: EUR
delivery:
  unsubscribe:
    url: "https://shop.example.com/unsubscribe/{token}"
    mailto: "unsubscribe@shop.example.com"
    secret: "bench-secret"
"""
SEND_TABLES = ("outbox", "message_events", "invalid_addresses")
PLAN_TABLES = ("plan_rows", "campaign_plans", "coupon_assignments")

MACROS = """
CREATE OR REPLACE TEMP MACRO _bmix(x) AS
    xor((xor(x, x >> 13) * 1274126177) % 4294967296,
        ((xor(x, x >> 13) * 1274126177) % 4294967296) >> 16);
CREATE OR REPLACE TEMP MACRO bh(i, s) AS
    _bmix((((i + s * 7919) * 2654435761) + s * 40503) % 4294967296);
CREATE OR REPLACE TEMP MACRO bu(i, s) AS bh(i, s) / 4294967296.0;
"""
FIRST_NAMES = (
    "Jana", "Petr", "Emily", "Oliver", "Zoë", "Seán", "Jiří", "Kateřina", "伟", "芳",
    "Иван", "Мария", "Luca", "Giulia", "Ольга", "Дмитрий", "Anne-Marie", "O'Neil",
)  # fmt: skip
LOCALES = (  # (locale, zone, share)
    ("en", "Europe/London", 0.4),
    ("cs", "Europe/Prague", 0.2),
    ("zh", "Asia/Shanghai", 0.1),
    ("bg", "Europe/Sofia", 0.1),
    ("it", "Europe/Rome", 0.1),
    ("ru", "Europe/Moscow", 0.1),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def generate_sql(n: int, channel: str) -> list[str]:
    """N users, a granted marketing consent each for `channel`, and for push a device each."""
    names = "[" + ", ".join(_lit(x) for x in FIRST_NAMES) + "]"
    bounds, acc = [], 0.0
    for loc, zone, share in LOCALES:
        acc += share
        bounds.append((loc, zone, round(acc, 6)))
    loc_case = " ".join(f"WHEN bu(i, 3) < {b} THEN {_lit(loc)}" for loc, _, b in bounds[:-1])
    zone_case = " ".join(f"WHEN bu(i, 3) < {b} THEN {_lit(z)}" for _, z, b in bounds[:-1])
    t0 = "TIMESTAMP '2025-06-01 00:00:00'"
    stmts = [
        MACROS,
        *(f"DELETE FROM {t}" for t in ("users", "consents", "devices", *SEND_TABLES)),
        f"""INSERT INTO users (user_id, email, first_name, last_name, locale, country, timezone,
            os, install_time, first_seen, last_seen, created_at, updated_at)
        SELECT 'u' || lpad(CAST(i AS VARCHAR), 7, '0'), 'user' || i || '@example.com',
            CASE WHEN bu(i, 1) < 0.1 THEN NULL
                ELSE {names}[1 + CAST(bh(i, 2) % {len(FIRST_NAMES)} AS BIGINT)] END,
            'Novák', CASE {loc_case} ELSE {_lit(bounds[-1][0])} END, NULL,
            CASE {zone_case} ELSE {_lit(bounds[-1][1])} END,
            CASE WHEN bu(i, 4) < 0.5 THEN 'iOS' ELSE 'Android' END,
            {t0} + to_seconds(CAST(bh(i, 5) % 20000000 AS BIGINT)),
            {t0} + to_seconds(CAST(bh(i, 5) % 20000000 AS BIGINT)),
            {t0} + INTERVAL 250 DAY, {t0}, {t0}
        FROM range({n}) r(i)""",
        f"""INSERT INTO consents (user_id, channel, purpose, granted, ts, source)
        SELECT user_id, {_lit(channel)}, 'marketing', TRUE, {t0}, 'bench' FROM users""",
    ]
    if channel == "push":
        stmts.append(
            f"""INSERT INTO devices (user_id, device_id, platform, push_token, push_provider,
                push_enabled, os, last_seen, invalidated_at, updated_at)
            SELECT user_id, 'dev-' || user_id, lower(os), 'tok-' || md5('tok' || user_id),
                'fcm', TRUE, os, last_seen, NULL, {t0} FROM users"""
        )
    return stmts


# --- workspaces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchWorkspace:
    root: Path
    campaign: str
    channel: str
    n: int
    build_seconds: float | None

    @property
    def db(self) -> Path:
        return self.root / ".mcrm" / "mcrm.duckdb"

    def ws(self) -> Any:
        from mcrm.config import open_workspace

        return open_workspace(str(self.root), {}, self.root)


def write_files(root: Path, campaign: str, providers: str) -> None:
    """mcrm.yaml (with this run's lane) and campaigns/: re-written every run."""
    (root / "mcrm.yaml").write_text(CONFIG + providers)
    shutil.rmtree(root / "campaigns", ignore_errors=True)
    (root / "campaigns").mkdir()
    shutil.copytree(ROOT / "campaigns" / "welcome", root / "campaigns" / "welcome")
    (root / "campaigns" / f"{campaign}.yaml").write_text(CAMPAIGNS[campaign])


def workspace(ctx: Context, campaign: str, n: int) -> DispatchWorkspace:
    """`dispatch-<channel>-<n>/`, its database built once (see the module docstring)."""
    import mcrm.db

    channel = "push" if campaign == PUSH else "email"
    root = ctx.data_dir / f"dispatch-{channel}-{n}"
    manifest = root / "manifest.json"
    want = {"generator": GENERATOR, "users": n, "channel": channel}
    if manifest.exists() and not ctx.regen:
        doc = json.loads(manifest.read_text())
        if all(doc.get(k) == v for k, v in want.items()):
            return DispatchWorkspace(root, campaign, channel, n, doc.get("build_seconds"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    write_files(root, campaign, "")
    w = DispatchWorkspace(root, campaign, channel, n, None)
    log(
        f"  building {root}: {n:,} users, {channel} consents" + (", devices" * (channel == "push"))
    )
    t0 = time.perf_counter()
    with mcrm.db.open_db(w.ws(), write=True) as con:
        from mcrm.dispatch import outbox

        outbox.ensure_tables(con)
        for stmt in generate_sql(n, channel):
            con.execute(stmt)
        con.execute("CHECKPOINT")
    secs = round(time.perf_counter() - t0, 1)
    log(f"  built in {secs:.1f} s")
    manifest.write_text(json.dumps({**want, "build_seconds": secs}, indent=2) + "\n")
    return DispatchWorkspace(root, campaign, channel, n, secs)


def plan(w: DispatchWorkspace) -> Path:
    """Empty the plan tables and plan files, plan once (render=False); the plan file."""
    import mcrm.db
    from mcrm.campaigns.engine import plan_campaign

    ws = w.ws()
    with mcrm.db.open_db(ws, write=True) as con:
        for t in PLAN_TABLES:
            con.execute(f"DELETE FROM {t}")
    shutil.rmtree(w.root / ".mcrm" / "plans", ignore_errors=True)
    t0 = time.perf_counter()
    res = plan_campaign(ws, w.campaign, AS_OF, render=False)
    log(
        f"  planned {res.planned:,} of {res.audience:,} in {time.perf_counter() - t0:.1f} s "
        "(untimed)"
    )
    if res.planned != w.n:
        raise RuntimeError(f"{w.campaign}: planned {res.planned} of {w.n} users")
    return w.root / res.file


def reset_send(w: DispatchWorkspace) -> None:
    """Empty what a send writes, so every timed run is the first send of the plan."""
    import mcrm.db

    with mcrm.db.open_db(w.ws(), write=True) as con:
        for t in SEND_TABLES:
            con.execute(f"DELETE FROM {t}")
        con.execute("UPDATE devices SET invalidated_at = NULL WHERE invalidated_at IS NOT NULL")
        con.execute("CHECKPOINT")


# --- the fakes, out of process ----------------------------------------------------------------


class FakeProcess:
    """`python -m tests.fakes NAME --port 0` as a child process: its credentials from the JSON
    it prints, its CPU seconds from /proc, SIGTERM on exit."""

    def __init__(self, name: str, scratch: Path):
        self.name = name
        argv = [sys.executable, "-m", "tests.fakes", name, "--port", "0"]
        self.service_account: Path | None = None
        if name == "fcm":
            self.service_account = scratch / "fcm-service-account.json"
            argv += ["--service-account", str(self.service_account)]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # one line per request: not wanted here
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if "listening on" not in first:
            self.stop()
            raise RuntimeError(f"{name} fake did not start: {first!r}")
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                break
        self.creds: dict[str, str] = json.loads("".join(lines))

    def cpu(self) -> float:
        """User + system CPU seconds of the fake so far."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fcm_providers(fake: FakeProcess) -> str:
    c = fake.creds
    return (
        "providers:\n  fcm:\n    type: fcm\n"
        f"    service_account: {c['service_account_file']}\n"
        f"    base_url: {c['base_url']}\n    token_uri: {c['token_uri']}\n"
    )


def sendgrid_providers(fake: FakeProcess) -> str:
    c = fake.creds
    return (
        "providers:\n  sendgrid:\n    type: sendgrid\n"
        f"    api_key: {c['api_key']}\n    from: {SENDER!r}\n    base_url: {c['base_url']}\n"
    )


# --- the baseline's bodies: what mcrm puts on the wire, built untimed -------------------------


def outbound(w: DispatchWorkspace) -> list[Any]:
    """The plan's messages as the dispatcher hands them to an adapter (rendered for each
    user, address looked up, unsubscribe headers), in user order."""
    import mcrm.db
    from mcrm.campaigns.context import Contexts, Target, render_targets
    from mcrm.campaigns.engine import CAMPAIGNS_DIR, load
    from mcrm.campaigns.render import Renderer, email_headers
    from mcrm.dispatch.core import Outbound

    ws = w.ws()
    c, delivery = load(ws, w.campaign)
    with mcrm.db.open_db(ws, write=True) as con:
        rows = con.execute(
            "SELECT r.user_id, r.channel, r.variant, r.send_at, r.idempotency_key, "
            "r.occurrence, "
            + (
                "d.push_token FROM plan_rows r JOIN devices d USING (user_id) "
                if w.channel == "push"
                else "u.email FROM plan_rows r JOIN users u USING (user_id) "
            )
            + "WHERE r.status = 'planned' ORDER BY r.user_id"
        ).fetchall()
        contexts = Contexts(con, ws, c, delivery, AS_OF, Renderer(ws.root / CAMPAIGNS_DIR))
        targets = [Target(r[0], r[1], r[2] or c.variants[0].name, r[3]) for r in rows]
        out = []
        for i, (r, o) in enumerate(zip(rows, render_targets(contexts, targets), strict=True)):
            assert o.message is not None and o.context is not None
            headers = {}
            if w.channel == "email":
                headers = email_headers(
                    unsubscribe_url=str(o.context["unsubscribe_url"]),
                    mailto=delivery.unsubscribe.mailto,
                )
            out.append(
                Outbound(
                    i + 1,
                    r[4],
                    c.name,
                    r[5],
                    r[0],
                    w.channel,
                    r[2],
                    r[6],
                    o.message.parts,
                    headers,
                )  # fmt: skip
            )
    return out


def fcm_bodies(w: DispatchWorkspace, fake: FakeProcess) -> tuple[str, str, list[bytes]]:
    """(URL, a valid bearer token, the N request bodies) as the FCM adapter makes them."""
    from mcrm.dispatch.providers import lane_for, load_providers, make_adapter

    ws = w.ws()
    a = make_adapter(ws, lane_for(load_providers(ws), "push"))
    try:
        token = a._access_token()
        bodies = [
            json.dumps(a.body(m), ensure_ascii=False, separators=(",", ":")).encode()
            for m in outbound(w)
        ]
        return a.url, token, bodies
    finally:
        a.close()


def sendgrid_bodies(w: DispatchWorkspace, batch: int) -> tuple[str, str, list[bytes], int]:
    """(URL, API key, the request bodies, recipients) as the SendGrid adapter makes them for
    the plan's messages in `batch`-row batches (nothing sent)."""
    from mcrm.dispatch.core import Outcome
    from mcrm.dispatch.core import Result as SendResult
    from mcrm.dispatch.providers import lane_for, load_providers
    from mcrm.dispatch.sendgrid import SendGrid

    ws = w.ws()
    conf = lane_for(load_providers(ws), "email")
    bodies: list[bytes] = []

    class Capture(SendGrid):
        def _send_request(self, r: Any) -> list[SendResult]:
            bodies.append(self._body(r, list(range(len(r.members)))))
            return [SendResult(x.m.outbox_id, Outcome.SENT) for x in r.members]

    a = Capture(conf.name, dict(conf.options))
    try:
        msgs = outbound(w)
        for i in range(0, len(msgs), batch):
            a.send(msgs[i : i + batch])
        return a.url, str(conf.options["api_key"]), bodies, len(msgs)
    finally:
        a.close()


def post_all(url: str, headers: dict[str, str], bodies: Sequence[bytes], ok: int) -> Timing:
    """The bare wire: one `requests.Session`, one thread, every body in turn."""
    import requests

    with requests.Session() as s:

        def go() -> None:
            for b in bodies:
                r = s.post(url, data=b, headers=headers)
                if r.status_code != ok:
                    raise RuntimeError(f"baseline post answered {r.status_code}: {r.text[:300]}")

        return timed(go)


# --- the measured side ------------------------------------------------------------------------


@dataclass
class SendRun:
    timing: Timing
    outcomes: dict[str, int]
    fake_cpu: float


def run_send(
    w: DispatchWorkspace, plan_file: Path, fake: FakeProcess, out: list[SendRun]
) -> Timing:
    from mcrm.dispatch.send import send

    reset_send(w)
    ws = w.ws()
    got: list[Any] = []
    f0 = fake.cpu()
    t = timed(lambda: got.append(send(ws, w.campaign, plan_file=plan_file, now=AS_OF)))
    summary = got[0]
    out.append(SendRun(t, dict(summary.outcomes), fake.cpu() - f0))
    if summary.outcomes.get("sent", 0) != w.n:
        raise RuntimeError(f"{w.campaign}: sent {summary.outcomes} of {w.n}")
    return t


def run_base(
    url: str, headers: dict[str, str], bodies: Sequence[bytes], ok: int, fake: FakeProcess,
    cpu: list[float],
) -> Timing:  # fmt: skip
    f0 = fake.cpu()
    t = post_all(url, headers, bodies, ok)
    cpu.append(fake.cpu() - f0)
    return t


def per(ts: Sequence[Timing], n: int, unit: int) -> list[Timing]:
    """Seconds for `n` -> seconds per `unit` (the harness's figures are seconds)."""
    k = unit / n
    return [Timing(t.wall * k, t.cpu * k) for t in ts]


def wire_bench(
    ctx: Context,
    name: str,
    campaign: str,
    n_full: int,
    unit: int,
    target_s: float,
    what: str,
) -> Iterator[Result]:
    import mcrm.dispatch.send  # noqa: F401  (imports are not what is measured)

    kind = "fcm" if campaign == PUSH else "sendgrid"
    n = ctx.size(n_full)
    w = workspace(ctx, campaign, n)
    scratch = ctx.scratch(name)
    with FakeProcess(kind, scratch) as fake:
        providers = fcm_providers(fake) if kind == "fcm" else sendgrid_providers(fake)
        write_files(w.root, campaign, providers)
        plan_file = plan(w)
        reset_send(w)
        t0 = time.perf_counter()
        if kind == "fcm":
            url, token, bodies = fcm_bodies(w, fake)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=utf-8",
            }
            ok, requests_n = 200, len(bodies)
        else:
            url, key, bodies, _ = sendgrid_bodies(w, 1000)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            ok, requests_n = 202, len(bodies)
        mb = sum(map(len, bodies)) / 1e6
        log(
            f"  {name}: {n:,} {what} a run, {requests_n:,} requests "
            f"({mb:.1f} MB of bodies, built in {time.perf_counter() - t0:.1f} s untimed); "
            f"best of {RUNS}"
        )
        runs: list[SendRun] = []
        base_cpu: list[float] = []
        ours, base = interleaved(
            RUNS,
            lambda: run_send(w, plan_file, fake, runs),
            lambda: run_base(url, headers, bodies, ok, fake, base_cpu),
        )
    best = min(t.wall for t in ours)
    rate = n / best
    base_rate = n / min(t.wall for t in base)
    cpu_rate = n / min(t.cpu for t in ours)
    i_best = min(range(len(ours)), key=lambda i: ours[i].wall)
    fake_cpu = runs[i_best].fake_cpu
    log(
        f"  mcrm {rate:,.0f} {what}/s ({cpu_rate:,.0f} per CPU second of mcrm; the fake used "
        f"{fake_cpu:.1f} CPU s), bare requests {base_rate:,.0f} {what}/s (fake "
        f"{min(base_cpu):.1f} CPU s); outcomes {runs[i_best].outcomes}"
    )
    yield compare(
        name,
        f"<= {target_s:g} s per {unit:,} {what} (>= {unit / target_s:,.0f} {what}/s)",
        per(ours, n, unit),
        per(base, n, unit),
        "bare requests.Session loop",
        lambda m, _b: m <= target_s,
        note=(
            f"{rate:,.0f} {what}/s, {cpu_rate:,.0f} per mcrm CPU second (bare requests loop "
            f"{base_rate:,.0f}/s, {requests_n:,} requests); {n:,} {what} a run; figures are "
            f"seconds per {unit:,} {what}; fake process CPU {fake_cpu:.1f} s (mcrm run) / "
            f"{min(base_cpu):.1f} s (baseline)"
        ),
        extra={
            "messages_per_run": n,
            "requests_per_run": requests_n,
            "body_megabytes": round(mb, 1),
            "per_second": round(rate),
            "per_cpu_second": round(cpu_rate),
            "baseline_per_second": round(base_rate),
            "run_wall_seconds": [round(t.wall, 3) for t in ours],
            "run_cpu_seconds": [round(t.cpu, 3) for t in ours],
            "baseline_wall_seconds": [round(t.wall, 3) for t in base],
            "fake_cpu_seconds": [round(r.fake_cpu, 2) for r in runs],
            "baseline_fake_cpu_seconds": [round(x, 2) for x in base_cpu],
            "outcomes": runs[i_best].outcomes,
            "build_seconds": w.build_seconds,
        },
    )


@bench("dispatch.fcm")
def fcm(ctx: Context) -> Iterator[Result]:
    """mcrm send to a local FCM-like API: >= 1,000 messages/s."""
    yield from wire_bench(ctx, "dispatch.fcm", PUSH, FCM_N, FCM_PER, FCM_TARGET_S, "msgs")


@bench("dispatch.sendgrid")
def sendgrid(ctx: Context) -> Iterator[Result]:
    """mcrm send to a local SendGrid-like API: >= 10,000 recipients/s."""
    yield from wire_bench(ctx, "dispatch.sendgrid", EMAIL, SG_N, SG_PER, SG_TARGET_S, "recipients")


# --- dispatch.memory --------------------------------------------------------------------------


# A child's ru_maxrss starts at its parent's RSS at fork (Linux copies the high-water mark of
# the mm it replaces at exec, vfork and posix_spawn included), and this process holds
# hundreds of MB after planning. So the measured command is started by a small launcher
# process (~10 MB) that reaps it with wait4 and writes its rusage to a file.
LAUNCHER = """\
import json, os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"maxrss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime,
               "code": os.waitstatus_to_exitcode(status)}, fh)
"""


def peak_rss(argv: Sequence[str], cwd: Path, scratch: Path) -> tuple[float, float, float, str]:
    """(peak RSS MB, wall s, CPU s, stdout) of a command, from its own rusage (via LAUNCHER)."""
    report = scratch / "rusage.json"
    report.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(report), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    got = json.loads(report.read_text()) if report.exists() else {"code": proc.returncode}
    if proc.returncode != 0 or got["code"] != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {got['code']}: {proc.stderr[-2000:]}")
    return got["maxrss_kb"] / 1024, wall, got["cpu"], proc.stdout


@bench("dispatch.memory")
def memory(ctx: Context) -> Iterator[Result]:
    """Peak RSS of mcrm send for 1,000,000 recipients: <= 1.5 GB."""
    n = ctx.size(MEM_N)
    w = workspace(ctx, EMAIL, n)
    scratch = ctx.scratch("dispatch.memory")
    cli = [ctx.mcrm_script, "--workspace", str(w.root)]
    with FakeProcess("sendgrid", scratch) as fake:
        write_files(w.root, EMAIL, sendgrid_providers(fake))
        plan_file = plan(w)
        reset_send(w)
        floor_mb = peak_rss([sys.executable, "-c", "pass"], w.root, scratch)[0]
        ref_mb, ref_wall, _, _ = peak_rss([*cli, "outbox", "stats"], w.root, scratch)
        log(
            f"  dispatch.memory: {n:,} recipients, one run; reference {ref_mb:,.0f} MB "
            f"(python -c pass: {floor_mb:,.0f} MB)"
        )
        f0 = fake.cpu()
        mb, wall, cpu, out = peak_rss(
            [*cli, "-q", "send", EMAIL, "--plan", str(plan_file), "--as-of", AS_OF_CLI,
             "--yes"],
            w.root,
            scratch,
        )  # fmt: skip
        fake_cpu = fake.cpu() - f0
    summary = json.loads(out.strip().splitlines()[-1])
    sent = summary["outcomes"].get("sent", 0)
    if sent != n:
        raise RuntimeError(f"dispatch.memory: sent {summary['outcomes']} of {n}")
    log(
        f"  peak RSS {mb:,.0f} MB, {wall:.0f} s wall, {cpu:.0f} s CPU ({n / wall:,.0f} "
        f"recipients/s); fake {fake_cpu:.0f} CPU s"
    )
    yield Result(
        name="dispatch.memory",
        target=f"<= {MEM_TARGET_MB:,.0f} MB peak RSS ({n:,} recipients)",
        measured=round(mb, 1),
        unit="MB",
        passed=mb <= MEM_TARGET_MB,
        baseline=round(ref_mb, 1),
        baseline_name="mcrm outbox stats (reference)",
        stat="1 run",
        note=(
            f"{n:,} recipients through the sendgrid lane in {wall:.0f} s wall, {cpu:.0f} s CPU "
            f"({n / wall:,.0f} recipients/s); reference = peak RSS of `mcrm outbox stats` on "
            "the same workspace"
        ),
        samples=[round(mb, 1)],
        baseline_samples=[round(ref_mb, 1)],
        cpu=round(cpu, 2),
        extra={
            "recipients": n,
            "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "recipients_per_second": round(n / wall),
            "fake_cpu_seconds": round(fake_cpu, 1),
            "reference_wall_seconds": round(ref_wall, 2),
            "python_pass_mb": round(floor_mb, 1),
            "outcomes": summary["outcomes"],
            "build_seconds": w.build_seconds,
        },
    )
