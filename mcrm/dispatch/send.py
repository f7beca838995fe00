"""`mcrm send`: a plan's messages through the outbox to the providers, at most once.

1. The plan: the given plan (by file) or a new one for now. Its planned rows go into the
   outbox under their idempotency keys (a key already there — an earlier send of the same
   occurrence — is never added twice).
2. Recovery first: rows a killed process left `sending` become `unknown` (or are settled from
   the file, for file lanes).
3. Per channel, due rows are claimed in batches and committed as `sending`; then, per row, the
   send-time checks (SPEC §9: consent still granted, address still valid — else closed as
   `failed` with the reason and no request), the message rendered as planned, the batch put
   on the wire, and its results stored at once.

`dry_run` renders the plan's messages and records nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcrm.dispatch.core import backoff
from mcrm.errors import NotFound, ProviderError, UsageError, os_reason

MAX_PAUSE_S = 300.0  # a lane pause up to this is slept through in the run (providers.md §1.4)
MAX_CONSECUTIVE_RETRIES = 20  # retry-class failures in a row that stop a lane for the run
LOOKAHEAD = 5  # batches whose rows one select and one send-time check look up together
PIPELINE = True  # one batch on the wire while the next is built (Dispatcher._pipelined)
GC_GEN0 = 20_000  # the collector's first threshold during a drain (_bulk_gc)

if TYPE_CHECKING:
    import duckdb

    from mcrm.campaigns.model import Campaign, Delivery
    from mcrm.config import Workspace


@dataclass
class SendSummary:
    campaign: str
    plan_id: str
    occurrence: str
    enqueued: int = 0
    already_queued: int = 0
    recovered: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    not_due: int = 0
    dry_run: bool = False
    rendered: int = 0
    stopped: str | None = None  # a lane stopped (auth) with this message

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "plan_id": self.plan_id,
            "occurrence": self.occurrence,
            "dry_run": self.dry_run,
            "enqueued": self.enqueued,
            "already_queued": self.already_queued,
            "recovered": self.recovered,
            "outcomes": self.outcomes,
            "not_due": self.not_due,
            "rendered": self.rendered,
            "stopped": self.stopped,
        }


def plan_id_of_file(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except OSError as e:
        raise UsageError(f"cannot read plan file {path}: {os_reason(e, path)}") from None
    try:
        return str(json.loads(first)["plan_id"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is not an mcrm plan file (JSON lines with plan_id)") from None


def send(
    ws: Workspace,
    name: str,
    *,
    plan_file: Path | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    rng: random.Random | None = None,
    retry_unknown: bool = False,
) -> SendSummary:
    from mcrm.campaigns.engine import load, plan_campaign
    from mcrm.db import open_db
    from mcrm.segments.engine import _now

    c, delivery = load(ws, name)
    when = now or _now()
    if plan_file is not None:
        plan_id = plan_id_of_file(plan_file)
    else:
        plan_id = plan_campaign(ws, name, when, render=not dry_run).plan_id
    rng = rng or random.Random()
    with open_db(ws, write=not dry_run) as con:
        got = con.execute(
            "SELECT campaign, occurrence, as_of FROM campaign_plans WHERE plan_id = ?", [plan_id]
        ).fetchall()
        if not got:
            raise NotFound(f"plan {plan_id} is not in the database", hint="run campaigns plan")
        if got[0][0] != c.name:
            raise UsageError(f"plan {plan_id} is a plan of {got[0][0]}, not of {c.name}")
        summary = SendSummary(c.name, plan_id, str(got[0][1]), dry_run=dry_run)
        if dry_run:
            summary.rendered = _dry_run(ws, con, c, delivery, plan_id, got[0][2])
            return summary
        return _send(
            ws, con, c, delivery, plan_id, got[0][2], when, limit, rng, summary, retry_unknown
        )


def _dry_run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    c: Campaign,
    delivery: Delivery,
    plan_id: str,
    as_of: dt.datetime,
) -> int:
    from mcrm.campaigns.context import Contexts, Target, render_targets
    from mcrm.campaigns.engine import CAMPAIGNS_DIR
    from mcrm.campaigns.render import Renderer

    rows = con.execute(
        "SELECT user_id, channel, variant, send_at FROM plan_rows WHERE plan_id = ? "
        "AND status = 'planned' ORDER BY user_id",
        [plan_id],
    ).fetchall()
    contexts = Contexts(con, ws, c, delivery, as_of, Renderer(ws.root / CAMPAIGNS_DIR))
    n = 0
    for o in render_targets(contexts, [Target(*r) for r in rows]):
        if o.error is not None:
            raise o.error
        n += 1
    return n


def _addresses(
    con: duckdb.DuckDBPyConnection,
    channel: str,
    purpose: str,
    users: list[str],
    now: Any,
    fields: Sequence[str] = (),
    values: dict[str, tuple[Any, ...]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(user -> address, user -> send-time suppression reason) for the claimed users; with
    `fields` (users columns, e-mail and SMS only), each addressed user's values of them go
    into `values` (the columnar path's template inputs, in the same query)."""
    import pyarrow as pa

    from mcrm.campaigns.plan import sms_number_ok
    from mcrm.dispatch.core import address_hash

    # the batch's users as a relation joined to consents and addresses (an `IN` list of 1000
    # literals cost 3x the join); the id range lets DuckDB skip row groups when the tables
    # are stored in user order
    distinct = sorted(set(users))
    if not distinct:
        return {}, {}
    lo, hi = distinct[0], distinct[-1]
    if channel == "push":
        address_sql = (
            "SELECT d.user_id, d.push_token AS address FROM devices d JOIN send_users b "
            "ON b.user_id = d.user_id WHERE d.user_id BETWEEN $lo AND $hi AND d.push_token "
            "IS NOT NULL AND coalesce(d.push_enabled, TRUE) AND d.invalidated_at IS NULL "
            "QUALIFY row_number() OVER (PARTITION BY d.user_id ORDER BY d.last_seen DESC "
            "NULLS LAST, d.device_id) = 1"
        )
    elif channel in ("email", "sms"):
        col = "email" if channel == "email" else "phone"
        extra = "".join(f", u.{f} AS f_{i}" for i, f in enumerate(fields))
        address_sql = (
            f"SELECT u.user_id, u.{col} AS address{extra} FROM users u JOIN send_users b "
            f"ON b.user_id = u.user_id WHERE u.user_id BETWEEN $lo AND $hi "
            f"AND u.{col} IS NOT NULL"
        )
    else:
        address_sql = "SELECT user_id, user_id AS address FROM send_users"
    if channel not in ("email", "sms"):
        fields = ()
    picked = "".join(f", a.f_{i}" for i in range(len(fields)))
    con.register("send_users", pa.table({"user_id": pa.array(distinct, pa.string())}))
    try:
        got = con.execute(
            f"SELECT b.user_id, c.granted, a.address{picked} FROM send_users b "
            "LEFT JOIN (SELECT k.user_id, k.granted FROM consents k JOIN send_users b "
            "ON b.user_id = k.user_id WHERE k.user_id BETWEEN $lo AND $hi "
            "AND k.channel = $channel AND k.purpose = $purpose AND k.ts <= $now "
            "QUALIFY row_number() OVER (PARTITION BY k.user_id "
            "ORDER BY k.ts DESC, k.granted ASC, k.source) = 1) c ON c.user_id = b.user_id "
            f"LEFT JOIN ({address_sql}) a ON a.user_id = b.user_id",
            {"lo": lo, "hi": hi, "channel": channel, "purpose": purpose, "now": now},
        ).fetchall()
    finally:
        con.unregister("send_users")
    consent = {r[0]: r[1] for r in got if r[1] is not None}
    addr = {r[0]: r[2] for r in got if r[2] is not None}
    if fields and values is not None:
        values.update((r[0], r[3:]) for r in got if r[2] is not None)
    invalid = {
        r[0]
        for r in con.execute(
            "SELECT address_hash FROM invalid_addresses WHERE channel = ?", [channel]
        ).fetchall()
    }
    why: dict[str, str] = {}
    for u in users:
        granted = consent.get(u)
        if channel == "inapp" and granted is None:
            granted = True
        if not granted:
            why[u] = "no_consent"
        elif u not in addr:
            why[u] = "invalid_token" if channel == "push" else "no_address"
        elif invalid and channel in ("email", "sms") and address_hash(channel, addr[u]) in invalid:
            why[u] = "no_address"
        elif channel == "sms" and not sms_number_ok(addr[u]):
            why[u] = "no_address"
    return addr, why


def _send(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    c: Campaign,
    delivery: Delivery,
    plan_id: str,
    as_of: dt.datetime,
    now: dt.datetime,
    limit: int | None,
    rng: random.Random,
    summary: SendSummary,
    retry_unknown: bool = False,
) -> SendSummary:
    from mcrm.dispatch import outbox

    d = Dispatcher(ws, con, now, rng)
    try:
        summary.recovered = d.recover()
        if retry_unknown:
            summary.recovered["requeued_unknown"] = outbox.requeue_unknown(con, c.name, now)
        con.execute("BEGIN")
        try:
            summary.enqueued, summary.already_queued = outbox.enqueue(con, plan_id, None, now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        d.drain(c, delivery, limit, summary.outcomes)
        summary.stopped = d.stopped
    finally:
        d.close()
    summary.not_due = int(
        con.execute(
            "SELECT count(*) FROM outbox WHERE plan_id = ? AND status IN "
            "('pending', 'retry_wait')",
            [plan_id],
        ).fetchall()[0][0]
    )
    if summary.stopped:
        raise ProviderError(summary.stopped, hint="check providers: in mcrm.yaml")
    return summary


class TokenBucket:
    """A lane's pace (`delivery.rate_limits`, messages per second): a burst of one second's
    worth, then `rate` a second on average; `take(n)` says how long to wait before sending n."""

    def __init__(self, rate: float, clock: Any = time.monotonic):
        self.rate = float(rate)
        self.clock = clock
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.at = clock()

    def take(self, n: int) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        if self.tokens >= 0:
            return 0.0
        wait = -self.tokens / self.rate
        self.tokens = 0.0
        self.at = now + wait  # the tokens up to then are spent
        return wait


class Dispatcher:
    """Sends due outbox rows, per campaign and channel, through their lanes (one instance
    per `send` or `run`, on the connection holding the database's write lock)."""

    def __init__(
        self,
        ws: Workspace,
        con: duckdb.DuckDBPyConnection,
        now: dt.datetime,
        rng: random.Random,
        sleep: Any = None,
    ):
        from mcrm.campaigns.engine import CAMPAIGNS_DIR
        from mcrm.dispatch import outbox
        from mcrm.dispatch.memo import MemoRenderer
        from mcrm.dispatch.providers import load_providers

        self.ws, self.con, self.now, self.rng = ws, con, now, rng
        outbox.ensure_tables(con)
        self.providers = load_providers(ws)
        self.types = {p.name: p.type for p in self.providers}
        self.adapters: dict[str, Any] = {}
        # the same text as Renderer (preview, plan), rendered once per distinct input
        self.renderer = MemoRenderer(ws.root / CAMPAIGNS_DIR)
        self.stopped: str | None = None
        self._stopped_lanes: set[str] = set()
        # the run's clock: it advances by what the run sleeps through (a lane pause), so
        # with --now the pauses are virtual and tests never wait
        self.sleep = sleep or time.sleep
        self.slept = 0.0
        self._pauses: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self.monotonic = time.monotonic
        # the connection is used by the drain and its sender thread, never at once
        self._db = threading.Lock()
        self._retry_run: dict[str, int] = {}
        self._columns: dict[tuple[str, str], Any] = {}  # (campaign, channel) -> Columns
        self._user_columns: dict[str, str] | None = None

    def adapter(self, channel: str) -> tuple[str, Any]:
        from mcrm.dispatch.providers import lane_for, make_adapter

        conf = lane_for(self.providers, channel)
        if conf.name not in self.adapters:
            self.adapters[conf.name] = make_adapter(self.ws, conf)
        return conf.name, self.adapters[conf.name]

    def recover(self) -> dict[str, int]:
        """Settle what a killed run left `sending` (every lane that has such rows)."""
        lanes = [
            r[0]
            for r in self.con.execute(
                "SELECT DISTINCT lane FROM outbox WHERE status = 'sending' AND lane IS NOT NULL"
            ).fetchall()
        ]
        for conf in self.providers:
            if conf.name in lanes and conf.name not in self.adapters:
                from mcrm.dispatch.providers import make_adapter

                self.adapters[conf.name] = make_adapter(self.ws, conf)
        self.con.execute("BEGIN")
        try:
            out = _recover(self.con, self.adapters, self.now)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return out

    def close(self) -> None:
        for a in self.adapters.values():
            a.close()

    def poll_receipts(self) -> dict[str, int]:
        """Receipts of lanes that have them (Expo), 15 min to 24 h after sending."""
        from mcrm.dispatch import outbox
        from mcrm.dispatch.providers import make_adapter

        rows = outbox.receipt_rows(self.con, self.now)
        counts: dict[str, int] = {}
        by_lane: dict[str, list[Any]] = {}
        for r in rows:
            by_lane.setdefault(str(r[1]), []).append(r)
        for lane, lrows in by_lane.items():
            conf = next((p for p in self.providers if p.name == lane), None)
            if conf is None:
                continue
            if lane not in self.adapters:
                self.adapters[lane] = make_adapter(self.ws, conf)
            a = self.adapters[lane]
            if not hasattr(a, "check_receipts"):
                continue
            got = a.check_receipts([r[2] for r in lrows], {r[2]: r[0] for r in lrows})
            for k, v in outbox.settle_receipts(self.con, lrows, got, self.now).items():
                counts[k] = counts.get(k, 0) + v
        return counts

    def _columnar(self, c: Campaign, delivery: Delivery, channel: str) -> Any:
        """The campaign's columnar path on `channel` (`columnar.Columns`), None when its
        templates read more than it builds."""
        from mcrm.dispatch.columnar import Columns

        key = (c.name, channel)
        if key not in self._columns:
            if self._user_columns is None:
                self._user_columns = {
                    str(r[0]): str(r[1]) for r in self.con.execute("DESCRIBE users").fetchall()
                }
            cols = Columns(
                self.renderer,
                c,
                delivery,
                channel,
                self._user_columns,
                self.ws.settings.base_currency,
            )
            self._columns[key] = cols if cols.eligible else None
        return self._columns[key]

    def _keyed_batch(self, batch: list[Any], shrunk: bool, outcomes: dict[str, int]) -> list[Any]:
        """A deduping batch lane (OneSignal) needs the same batch key on every attempt: the key
        of a new batch (uuid5 of its sorted member keys) is stored before the request; a
        batch that went out before and lost members since (closed at send time) cannot be
        resent under another key without risking duplicates, so its rest becomes `unknown`."""
        import dataclasses

        from mcrm.dispatch.core import batch_key

        con = self.con
        ids = ", ".join(str(m.outbox_id) for m in batch)
        if batch[0].batch_key is not None:
            if shrunk:
                con.execute(
                    "UPDATE outbox SET status = 'unknown', last_error_code = 'batch_changed', "
                    "last_error = 'a batch that may have been delivered lost members', "
                    f"updated_at = ? WHERE id IN ({ids})",
                    [self.now],
                )
                outcomes["unknown"] = outcomes.get("unknown", 0) + len(batch)
                return []
            return batch
        key = batch_key([m.idempotency_key for m in batch])
        con.execute("BEGIN")
        con.execute(f"UPDATE outbox SET batch_key = ? WHERE id IN ({ids})", [key])
        con.execute("COMMIT")
        return [dataclasses.replace(m, batch_key=key) for m in batch]

    def drain(
        self, c: Campaign, delivery: Delivery, limit: int | None, outcomes: dict[str, int]
    ) -> int:
        """Send every due row of campaign `c` (at most `limit`); returns the number sent."""
        with _bulk_gc():
            return self._drain(c, delivery, limit, outcomes)

    def _drain(
        self, c: Campaign, delivery: Delivery, limit: int | None, outcomes: dict[str, int]
    ) -> int:
        from mcrm.dispatch import outbox

        con = self.con
        channels = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT channel FROM outbox WHERE campaign = ? AND status IN "
                "('pending', 'retry_wait') AND coalesce(next_attempt_at, send_at, ?) <= ? "
                "ORDER BY 1",
                [c.name, self.now, self.now],
            ).fetchall()
        ]
        contexts: dict[str, Any] = {}  # plan id -> Contexts as of that plan
        sent_total = 0
        for ch in channels:
            lane, adapter = self.adapter(ch)
            if lane in self._stopped_lanes:
                continue
            st = _Lane(lane, ch, adapter, self._columnar(c, delivery, ch))
            paced = lane in self._buckets or bool(c.delivery.rate_limits.get(ch))
            if PIPELINE and limit is None and not adapter.dedupes and not paced:
                sent, finished = self._pipelined(c, delivery, st, outcomes, contexts)
                sent_total += sent
                if finished:
                    continue
            # one batch at a time: claimed, built, sent, settled
            while limit is None or sent_total < limit:
                want = adapter.max_batch
                if limit is not None:
                    want = min(want, limit - sent_total)
                if not st.ahead and not adapter.dedupes and LOOKAHEAD > 1:
                    self._look_ahead(c, st)
                if st.ahead:
                    claimed = outbox.claim_rows(con, st.ahead[:want], lane, self.now)
                    st.ahead = st.ahead[want:]
                else:
                    claimed = outbox.claim(con, c.name, ch, lane, self.now, want, st.cursor)
                    if claimed:
                        st.values = {}
                        st.addr, st.why = _addresses(
                            con,
                            ch,
                            c.purpose,
                            [x.user_id for x in claimed],
                            self.now,
                            st.fields,
                            st.values,
                        )
                if not claimed:
                    break
                st.cursor = max(st.cursor, max(x.id for x in claimed))
                by_id, closed, batch = self._build(c, delivery, st, claimed, contexts)
                if closed:
                    self._close(closed, self.now)
                    _count_closed(closed, outcomes)
                if not batch:
                    continue
                if adapter.dedupes and adapter.max_batch > 1:
                    batch = self._keyed_batch(batch, bool(closed), outcomes)
                    if not batch:
                        continue
                pace = self._buckets.get(lane)
                rate = c.delivery.rate_limits.get(ch)
                if pace is None and rate:
                    pace = self._buckets[lane] = TokenBucket(rate, self.monotonic)
                if pace is not None:
                    wait = pace.take(len(batch))
                    if wait > 0:  # delivery.rate_limits: pace the lane, really
                        self.sleep(wait)
                results, got, throttled, pause = self._deliver(st, batch, by_id, self.now)
                sent_total += got.get("sent", 0)
                if self._control(st, results, got, throttled, pause, outcomes) == _STOP:
                    break
        return sent_total

    def _look_ahead(self, c: Campaign, st: _Lane) -> bool | None:
        """The lane's next LOOKAHEAD batches of due rows and their send-time checks into
        `st`; False when nothing is due, None when a keyed batch is due (`outbox.claim`)."""
        from mcrm.dispatch import outbox

        got = outbox.due_ahead(
            self.con,
            c.name,
            st.channel,
            self.now,
            st.lane,
            LOOKAHEAD * st.adapter.max_batch,
            st.cursor,
        )
        if not got:
            return None if got is None else False
        st.ahead = got
        st.values = {}
        st.addr, st.why = _addresses(
            self.con, st.channel, c.purpose, [x.user_id for x in got], self.now, st.fields,
            st.values,
        )  # fmt: skip
        return True

    def _pipelined(
        self,
        c: Campaign,
        delivery: Delivery,
        st: _Lane,
        outcomes: dict[str, int],
        contexts: dict[str, Any],
    ) -> tuple[int, bool]:
        """The lane's due rows, one batch in flight while the next is built.

        A sender thread claims batch N (committed `sending`), puts it on the wire and settles
        it, while this thread looks up and builds batch N+1 — still `pending`: it is claimed
        only after N is settled and N's answers are seen (a STOP or an invalid address, a
        429, an auth failure discard it and the rows are looked up again). So the crash
        bound is the sequential one: at most one batch `sending`. The socket I/O and DuckDB's
        statements release the GIL, so the request, the provider's work and the statements
        overlap the Python of the next batch. Returns (sent, finished); not finished when a
        keyed batch is due (the sequential loop handles it)."""
        from concurrent.futures import Future, ThreadPoolExecutor

        sent = 0
        job: _Job | None = None  # built, not claimed
        inflight: tuple[Future[Any], _Job] | None = None
        keyed = False
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcrm-send") as pool:
            while True:
                if job is None and not keyed:
                    with self._db:
                        looked = True if st.ahead else self._look_ahead(c, st)
                    if looked is None:
                        keyed = True
                    elif looked:
                        rows = st.ahead[: st.adapter.max_batch]
                        st.ahead = st.ahead[st.adapter.max_batch :]
                        job = _Job(rows, *self._build(c, delivery, st, rows, contexts), self.now)
                if inflight is not None:
                    fut, done = inflight
                    inflight = None
                    results, got, throttled, pause = fut.result()
                    _count_closed(done.closed, outcomes)
                    sent += got.get("sent", 0)
                    ctl = self._control(st, results, got, throttled, pause, outcomes)
                    if ctl == _STOP:
                        return sent, True
                    if ctl == _AGAIN:  # the built batch is stale: look its rows up again
                        job, keyed = None, False
                        continue
                if job is None:
                    return sent, not keyed
                st.cursor = max(st.cursor, job.rows[-1].id)
                inflight = (pool.submit(self._run_job, st, job), job)
                job = None

    def _run_job(self, st: _Lane, job: _Job) -> tuple[list[Any], dict[str, int], bool, float]:
        """The sender thread's part of one batch: claim (commit), close what the send-time
        checks refused, the request, settle."""
        from mcrm.dispatch import outbox

        with self._db:
            outbox.claim_rows(self.con, job.rows, st.lane, job.now)
            if job.closed:
                self._close(job.closed, job.now)
        if not job.batch:
            return [], {}, False, 0.0
        return self._deliver(st, job.batch, job.by_id, job.now)

    def _close(self, closed: dict[str, list[int]], now: dt.datetime) -> None:
        from mcrm.dispatch import outbox

        self.con.execute("BEGIN")
        try:
            for reason, ids in closed.items():
                outbox.close_without_sending(self.con, ids, reason, now)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def _build(
        self,
        c: Campaign,
        delivery: Delivery,
        st: _Lane,
        rows: list[Any],
        contexts: dict[str, Any],
    ) -> tuple[dict[int, Any], dict[str, list[int]], list[Any]]:
        """A batch's rows -> (rows by id, outbox ids closed per reason, messages to send)."""
        from mcrm.campaigns.context import Contexts, Target, render_targets
        from mcrm.campaigns.render import email_headers
        from mcrm.dispatch.core import Outbound

        ch, cols, why, addr, values = st.channel, st.cols, st.why, st.addr, st.values
        by_id = {x.id: x for x in rows}
        closed: dict[str, list[int]] = {}
        for x in rows:
            if x.user_id in why:
                closed.setdefault(why[x.user_id], []).append(x.id)
        batch: list[Outbound] = []
        todo = [x for x in rows if x.user_id not in why]
        groups: dict[str, list[Any]] = {}
        for x in todo:
            groups.setdefault(str(x.plan_id), []).append(x)
        for pid, xs in groups.items():
            if cols is not None:
                issued = (xs[0].as_of or self.now).replace(tzinfo=dt.UTC)
                built = cols.messages(
                    [(x.user_id, x.variant or c.variants[0].name, values[x.user_id]) for x in xs],
                    issued,
                )
                if built is not None:
                    batch += [
                        Outbound(
                            x.id,
                            x.idempotency_key,
                            x.campaign,
                            x.occurrence,
                            x.user_id,
                            ch,
                            x.variant,
                            addr[x.user_id],
                            parts,
                            headers,
                            None,
                            x.batch_key,
                            shared,
                        )
                        for x, (parts, headers, shared) in zip(xs, built, strict=True)
                    ]
                    continue
            with self._db:  # Contexts query the database (the sender thread may be settling)
                if pid not in contexts:
                    as_of = xs[0].as_of or self.now
                    contexts[pid] = Contexts(self.con, self.ws, c, delivery, as_of, self.renderer)
                targets = [
                    Target(x.user_id, ch, x.variant or c.variants[0].name, x.send_at) for x in xs
                ]
                rendered = list(render_targets(contexts[pid], targets))
            for x, o in zip(xs, rendered, strict=True):
                if o.error is not None or o.message is None:
                    reason = "template_error" if o.error is not None else "template_skip"
                    closed.setdefault(reason, []).append(x.id)
                    continue
                headers = {}
                if ch == "email" and c.marketing and o.context:
                    headers = email_headers(
                        unsubscribe_url=str(o.context.get("unsubscribe_url")),
                        mailto=delivery.unsubscribe.mailto,
                    )
                batch.append(
                    Outbound(
                        x.id,
                        x.idempotency_key,
                        x.campaign,
                        x.occurrence,
                        x.user_id,
                        ch,
                        x.variant,
                        addr[x.user_id],
                        o.message.parts,
                        headers,
                        o.message.payload,
                        x.batch_key,
                    )
                )
        return by_id, closed, batch

    def _deliver(
        self, st: _Lane, batch: list[Any], by_id: dict[int, Any], now: dt.datetime
    ) -> tuple[list[Any], dict[str, int], bool, float]:
        """The request(s) of one claimed batch and its settlement: (results, counts per new
        status, throttled, the lane's pause)."""
        from mcrm.dispatch import outbox
        from mcrm.dispatch.core import Outcome

        lane, adapter = st.lane, st.adapter
        results = adapter.send(batch)
        addresses = {m.outbox_id: (st.channel, m.address) for m in batch}
        throttled = [r for r in results if r.outcome is Outcome.THROTTLED]
        pause = 0.0
        if throttled:  # lane-wide: max(Retry-After, backoff) before anything else
            pauses = self._pauses.get(lane, 0) + 1
            self._pauses[lane] = pauses
            pause = max([r.retry_after_s or 0.0 for r in throttled] + [backoff(pauses, self.rng)])
        with self._db:
            got = outbox.settle(
                self.con,
                by_id,
                results,
                now,
                self.rng,
                addresses,
                lane_wait=pause or None,
                dedupes=adapter.dedupes,
                receipts=hasattr(adapter, "check_receipts"),
                provider=self.types.get(lane),
            )
        return results, got, bool(throttled), pause

    def _control(
        self,
        st: _Lane,
        results: list[Any],
        got: dict[str, int],
        throttled: bool,
        pause: float,
        outcomes: dict[str, int],
    ) -> str:
        """What a settled batch's answers mean for the lane: go on, look again (`_AGAIN`: an
        address or consent changed, or the lane paused and the clock moved), or stop."""
        from mcrm.dispatch.core import Outcome

        lane = st.lane
        for k, v in got.items():
            outcomes[k] = outcomes.get(k, 0) + v
        again = False
        if any(r.mark is not None for r in results):
            st.ahead = []  # an address or consent changed: the later rows check again
            again = True
        if any(r.outcome is Outcome.AUTH for r in results):
            self._stopped_lanes.add(lane)
            self.stopped = f"{lane}: the provider refused our credentials"
            return _STOP
        run = self._retry_run.get(lane, 0)
        for r in results:
            run = run + 1 if r.outcome is Outcome.RETRY else 0
        self._retry_run[lane] = run
        if run >= MAX_CONSECUTIVE_RETRIES:
            self._stopped_lanes.add(lane)  # the provider is down: stop hammering it
            return _STOP
        if throttled:
            if pause > MAX_PAUSE_S:
                return _STOP  # too long to sleep through: the rows wait for a later run
            self.sleep(pause)
            self.slept += pause
            self.now = self.now + dt.timedelta(seconds=pause)
            st.cursor = 0
            st.ahead = []  # looked up for the old clock: look again
            return _AGAIN
        return _AGAIN if again else _GO


_GO, _AGAIN, _STOP = "go", "again", "stop"


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """The cyclic garbage collector tuned for a drain, restored after it. A bulk send makes
    tens of objects a recipient that live for a batch or two (rows looked up ahead, messages,
    results); with the default first-generation threshold (700) they set off about 17 young
    and one full collection per 1,000-recipient batch, 1.3 s of 100,000 recipients' 8-9 s
    (`benchmarks.profile_dispatch`, gc.callbacks). Here the objects that existed before the
    drain are frozen (not scanned again: the workspace, templates, modules) and the first
    threshold is GC_GEN0: 0.04 s of collections. Cycles are still collected, later; what the
    refcounts free (nearly everything) is freed at once as before.

    The collector is one per process: drains that nest or overlap (threads) tune it once,
    the first in, and the last out restores it. Objects someone else froze stay frozen (the
    drain then freezes nothing: `gc.unfreeze` would thaw theirs too), and a first threshold
    of 0 (automatic collection off) stays 0."""
    import gc

    with _GC_LOCK:
        if _GC_STATE["depth"] == 0:
            old = gc.get_threshold()
            froze = gc.get_freeze_count() == 0
            _GC_STATE["old"], _GC_STATE["froze"] = old, froze
            if froze:
                gc.freeze()
            if old[0]:
                gc.set_threshold(max(old[0], GC_GEN0), *old[1:])
        _GC_STATE["depth"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE["depth"] -= 1
            if _GC_STATE["depth"] == 0:
                gc.set_threshold(*_GC_STATE["old"])
                if _GC_STATE["froze"]:
                    gc.unfreeze()


_GC_LOCK = threading.Lock()
_GC_STATE: dict[str, Any] = {"depth": 0, "old": None, "froze": False}  # of _bulk_gc


@dataclass
class _Lane:
    """One channel's drain state: its lane, the cursor and the rows looked up ahead."""

    lane: str
    channel: str
    adapter: Any
    cols: Any  # columnar.Columns or None
    cursor: int = 0  # claim in id order; a lane pause (the clock moves) starts over
    ahead: list[Any] = field(default_factory=list)  # looked up, not claimed
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    addr: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> Sequence[str]:
        return self.cols.columns if self.cols is not None else ()


@dataclass
class _Job:
    """A built batch, not yet claimed."""

    rows: list[Any]
    by_id: dict[int, Any]
    closed: dict[str, list[int]]
    batch: list[Any]
    now: dt.datetime


def _count_closed(closed: dict[str, list[int]], outcomes: dict[str, int]) -> None:
    for reason, ids in closed.items():
        # a send-time suppression is no failure to send; a template error is
        key = "failed" if reason == "template_error" else "suppressed"
        outcomes[key] = outcomes.get(key, 0) + len(ids)


def _recover(
    con: duckdb.DuckDBPyConnection, adapters: dict[str, Any], now: dt.datetime
) -> dict[str, int]:
    """Settle what a killed run left `sending`: file lanes from the file itself, lanes whose
    provider dedupes back to `retry_wait`, everything else `unknown`."""
    from mcrm.dispatch import outbox
    from mcrm.dispatch.providers import FileOutbox

    out: dict[str, int] = {}
    for name, a in adapters.items():
        if isinstance(a, FileOutbox):
            rows = con.execute(
                "SELECT id, idempotency_key FROM outbox WHERE status = 'sending' AND lane = ?",
                [name],
            ).fetchall()
            if not rows:
                continue
            written = a.written_ids()
            done = [i for i, k in rows if k in written]
            again = [i for i, k in rows if k not in written]
            if done:
                con.execute(
                    "UPDATE outbox SET status = 'sent', updated_at = ? WHERE id IN "
                    f"({', '.join(str(i) for i in done)})",
                    [now],
                )
                con.execute(
                    "INSERT INTO message_events (event_id, provider, message_id, user_id, "
                    "campaign, channel, type, ts) SELECT idempotency_key, lane, "
                    "provider_message_id, user_id, campaign, channel, 'sent', ? FROM outbox "
                    f"WHERE id IN ({', '.join(str(i) for i in done)})",
                    [now],
                )
                out["sent"] = out.get("sent", 0) + len(done)
            if again:
                con.execute(
                    "UPDATE outbox SET status = 'pending', updated_at = ? WHERE id IN "
                    f"({', '.join(str(i) for i in again)})",
                    [now],
                )
                out["pending"] = out.get("pending", 0) + len(again)
    resend = [n for n, a in adapters.items() if getattr(a, "dedupes", False)]
    for k, v in outbox.recover(con, now, resend).items():
        if v:
            out[k] = out.get(k, 0) + v
    return out
