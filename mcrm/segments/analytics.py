"""RFM, lifecycle and loyalty tiers as of an instant, as portable SQL relations.

Definitions are those of `reference/analytics.md` §1 (RFM) and §6 (lifecycle): populations,
day arithmetic in the workspace zone, NTILE with the md5-then-id tie-break, first matching
lifecycle row wins. Each function returns one SELECT that the engine materialises as a TEMP
table (`rfm`, `lifecycle`, `tiers`) or `segments sql` inlines as a CTE.

RFM has a second, DuckDB-only implementation, `materialise_rfm`, which the engine uses to
build its TEMP table: the same rows as `rfm_sql` (a parity test compares them on generated
data), without any sort of all customers. Three NTILE windows and the md5 ranking were two
thirds of the RFM time on 1.4M orders (docs/performance.md). An NTILE(5) score is decided by
four boundary rows: a customer's score is 1 + the number of boundaries at or before them in
the window's order. Those four rows are found by narrowing histograms (a few cheap scans that
count rows per value bin, then per bin of the md5 key inside one crowded value, then a sort of
at most a few thousand rows), and the final pass compares every customer with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcrm.segments.compile import Ctx, date_lit, lit, local_day, rf_cells

if TYPE_CHECKING:
    import duckdb


def _rfm_days_sql(ctx: Ctx) -> str:
    """Paid amount per (customer, local day) in the window."""
    s = ctx.seg.rfm
    # the local day once per order (plain offset arithmetic, see compile.local_day)
    orders = (
        f"SELECT p.user_id, {local_day('p.ts', ctx.zone, ctx.as_of)} AS day, p.amount_base "
        "FROM purchases p WHERE p.status = 'paid' AND p.user_id IS NOT NULL "
        f"AND p.ts <= {ctx.d} AND p.ts >= {ctx.ago(s.window_days)}"
    )
    # per (customer, day) first, then per customer: cheaper than count(DISTINCT day)
    return (
        f"SELECT o.user_id, o.day, sum(o.amount_base) AS amount FROM ({orders}) o "
        "GROUP BY o.user_id, o.day"
    )


def _rfm_measures(ctx: Ctx) -> str:
    return (
        f"date_diff('day', max(d.day), {date_lit(ctx.d_local)}) AS recency_days, "
        "count(*) AS frequency, CAST(sum(d.amount) AS DECIMAL(18,3)) AS monetary"
    )


def _cells_join(ctx: Ctx) -> str:
    # the segment of each (R, F) cell from a 25-row table joined on one integer key: cheaper
    # per customer than a 25-branch CASE
    rows = ", ".join(f"({10 * r + f}, {lit(n)})" for n, r, f in rf_cells(ctx.seg.rfm.scheme))
    return f"JOIN (VALUES {rows}) c(rf, segment) ON c.rf = 10 * s.r + s.f"


_RFM_OUT = (
    "SELECT s.user_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, "
    "CAST(100 * s.r + 10 * s.f + s.m AS VARCHAR) AS cell, c.segment "
)


def rfm_sql(ctx: Ctx) -> str:
    # md5 once per customer (the reference's md5(user_id), user_id tie-break)
    base = (
        f"SELECT d.user_id, md5(d.user_id) AS h, {_rfm_measures(ctx)} "
        f"FROM ({_rfm_days_sql(ctx)}) d GROUP BY d.user_id"
    )
    # (md5, id) ranked once; ordering by that rank is ordering by md5(user_id), user_id, and
    # three integer sorts are far cheaper than three sorts on 32-character strings
    ranked = f"SELECT b0.*, row_number() OVER (ORDER BY h, user_id) AS hr FROM ({base}) b0"
    scored = (
        "SELECT user_id, recency_days, frequency, monetary, "
        "NTILE(5) OVER (ORDER BY recency_days DESC, hr) AS r, "
        "NTILE(5) OVER (ORDER BY frequency ASC, hr) AS f, "
        "NTILE(5) OVER (ORDER BY monetary ASC, hr) AS m "
        f"FROM ({ranked}) b"
    )
    return f"{_RFM_OUT}FROM ({scored}) s {_cells_join(ctx)}"


# --- the DuckDB fast path ----------------------------------------------------------------------

_BASE = "_rfm_base"
# NULL monetary (every amount of the customer NULL) sorts last, as NULLS LAST does in NTILE's
# ORDER BY monetary ASC: above any DECIMAL(18,3) in thousandths (< 10^18)
_NULL_LAST = 9_000_000_000_000_000_000
_U64 = (1 << 64) - 1


def _bswap64(x: str) -> str:
    """The UBIGINT `x` with its eight bytes reversed (SQL)."""
    terms = [f"(({x} & {0xFF << (8 * i)}::UBIGINT) << {56 - 16 * i})" for i in range(4)]
    terms += [f"(({x} >> {16 * i - 56}) & {0xFF << (8 * (7 - i))}::UBIGINT)" for i in range(4, 8)]
    return "(" + " | ".join(terms) + ")"


def _u64(v: int) -> str:
    return f"{v}::UBIGINT"


def _ge(col: str, key: tuple[Any, ...]) -> str:
    """(col, k1, k2, user_id) >= key, lexicographically (SQL)."""
    v, a, b, u = key
    return (
        f"({col} > {v} OR ({col} = {v} AND (k1 > {_u64(a)} OR (k1 = {_u64(a)} AND "
        f"(k2 > {_u64(b)} OR (k2 = {_u64(b)} AND user_id >= {lit(u)}))))))"
    )


def ntile_starts(n: int, buckets: int = 5) -> list[int]:
    """0-based position of the first row of buckets 2..`buckets` under NTILE: n = q*buckets + s
    rows, the first s buckets hold q + 1. A start >= n means the bucket is empty."""
    q, s = divmod(n, buckets)
    return [b * q + min(b, s) for b in range(1, buckets)]


@dataclass
class _Search:
    """Where the row at position `p` of the order (col, k1, k2, user_id) is known to be: in
    `where`, after `before` rows, among `count` rows; `lo`..`hi` on col, or on k1 once
    `value` (one col value) is fixed."""

    col: str
    p: int
    lo: int
    hi: int
    before: int
    count: int
    value: int | None = None

    @property
    def where(self) -> str:
        if self.value is None:
            return f"{self.col} BETWEEN {self.lo} AND {self.hi}"
        return f"{self.col} = {self.value} AND k1 BETWEEN {_u64(self.lo)} AND {_u64(self.hi)}"

    def histogram(self, bins: int) -> tuple[str, int]:
        width = -(-(self.hi - self.lo + 1) // bins)
        if self.value is not None:
            x = f"(k1 - {_u64(self.lo)}) // {_u64(width)}"
        elif max(abs(self.lo), abs(self.hi)) < 1 << 61:
            x = f"({self.col} - ({self.lo})) // {width}"
        else:
            x = f"(CAST({self.col} AS HUGEINT) - ({self.lo})) // {width}"
        return (
            f"SELECT CAST({x} AS BIGINT) AS bin, count(*) AS c FROM {_BASE} "
            f"WHERE {self.where} GROUP BY bin",
            width,
        )

    def keep(self, counts: list[tuple[int, int]], width: int, exact_rows: int) -> None:
        """Narrow to the bin that holds the position; on one crowded value, go on by k1."""
        before = self.before
        for b, c in sorted(counts):
            if before + c > self.p:
                self.lo = self.lo + b * width
                self.hi = min(self.hi, self.lo + width - 1)
                self.before, self.count = before, c
                break
            before += c
        else:  # pragma: no cover - the counts always add up to `count`
            raise AssertionError(f"rfm: position {self.p} not found in {self.where}")
        if self.value is None and self.lo == self.hi and self.count > exact_rows:
            self.value, self.lo, self.hi = self.lo, 0, _U64

    def done(self, exact_rows: int) -> bool:
        return self.count <= exact_rows or self.lo == self.hi


def _boundary_keys(
    con: duckdb.DuckDBPyConnection, searches: list[_Search], bins: int, exact_rows: int
) -> list[tuple[Any, ...]]:
    """The (col, k1, k2, user_id) of the row at each search's position, without sorting
    `_rfm_base`: per round, one query counts rows per bin for every open search (searches
    that ask the same histogram share it) and each search keeps the bin that holds its row,
    until at most `exact_rows` rows (or one key) are left; one last query sorts those."""
    for s in searches:
        if s.lo == s.hi and s.count > exact_rows:
            s.value, s.lo, s.hi = s.lo, 0, _U64
    while True:
        open_ = [s for s in searches if not s.done(exact_rows)]
        if not open_:
            break
        asks: dict[str, int] = {}
        for s in open_:
            sql, _ = s.histogram(bins)
            asks.setdefault(sql, len(asks))
        union = " UNION ALL ".join(
            f"SELECT {q} AS q, bin, c FROM ({sql})" for sql, q in asks.items()
        )
        got: dict[int, list[tuple[int, int]]] = {q: [] for q in asks.values()}
        for q, b, c in con.execute(union).fetchall():
            got[int(q)].append((int(b), int(c)))
        for s in open_:
            sql, width = s.histogram(bins)
            s.keep(got[asks[sql]], width, exact_rows)
    union = " UNION ALL ".join(
        f"(SELECT {i} AS q, {s.col}, k1, k2, user_id FROM {_BASE} WHERE {s.where} "
        f"ORDER BY {s.col}, k1, k2, user_id LIMIT 1 OFFSET {s.p - s.before})"
        for i, s in enumerate(searches)
    )
    rows = {int(r[0]): tuple(r[1:]) for r in con.execute(union).fetchall()} if searches else {}
    return [rows[i] for i in range(len(searches))]


def materialise_rfm(
    con: duckdb.DuckDBPyConnection,
    ctx: Ctx,
    table: str = "rfm",
    *,
    bins: int = 4096,
    exact_rows: int = 4096,
) -> None:
    """CREATE TEMP TABLE `table` with the rows of `rfm_sql(ctx)` (DuckDB only; see the module
    docstring). `bins` and `exact_rows` only trade scans for sort size (tests shrink them to
    exercise every narrowing step)."""
    # md5(user_id) as two order-preserving integers: md5_number is the digest read
    # little-endian, so byte-reversing each half gives the first and last 16 hex digits as
    # numbers, and (k1, k2) orders exactly as the lowercase hex string md5(user_id) does
    x = "md5_number(a.user_id)"
    base = (
        f"SELECT d.user_id, {_rfm_measures(ctx)} FROM ({_rfm_days_sql(ctx)}) d GROUP BY d.user_id"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_BASE} AS SELECT user_id, recency_days, frequency, "
        f"monetary, -recency_days AS vr, frequency AS vf, coalesce(CAST(monetary * 1000 AS "
        f"BIGINT), {_NULL_LAST}) AS vm, {_bswap64('lo64')} AS k1, {_bswap64('hi64')} AS k2 "
        f"FROM (SELECT a.*, CAST({x} & {_U64}::UHUGEINT AS UBIGINT) AS lo64, "
        f"CAST({x} >> 64 AS UBIGINT) AS hi64 FROM ({base}) a) b"
    )
    try:
        stats = con.execute(
            f"SELECT count(*), min(vr), max(vr), min(vf), max(vf), min(vm), max(vm) FROM {_BASE}"
        ).fetchall()[0]
        n = int(stats[0])
        starts = [p for p in ntile_starts(n) if p < n]
        cols = ("vr", "vf", "vm")
        searches = [
            _Search(col, p, int(stats[1 + 2 * i]), int(stats[2 + 2 * i]), 0, n)
            for i, col in enumerate(cols)
            for p in starts
        ]
        keys = _boundary_keys(con, searches, bins, exact_rows)
        scores = []
        for name, col in zip("rfm", cols, strict=True):
            terms = "".join(
                f" + CAST({_ge(col, k)} AS BIGINT)"
                for s, k in zip(searches, keys, strict=True)
                if s.col == col
            )
            scores.append(f"CAST(1{terms} AS BIGINT) AS {name}")
        scored = (
            f"SELECT user_id, recency_days, frequency, monetary, {', '.join(scores)} FROM {_BASE}"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS {_RFM_OUT}FROM ({scored}) s "
            f"{_cells_join(ctx)}"
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_BASE}")


def activity_days_sql(ctx: Ctx) -> str:
    """Distinct (user_id, day) of activity up to D, days in the workspace zone."""
    lc = ctx.seg.lifecycle
    names = [a for a in lc.activity if a != "purchase"]
    parts = []
    if names:
        parts.append(
            f"SELECT e.user_id, {local_day('e.ts', ctx.zone, ctx.as_of)} AS day FROM events e "
            f"WHERE e.user_id IS NOT NULL AND e.ts <= {ctx.d} "
            f"AND e.name IN ({', '.join(lit(n) for n in names)})"
        )
    if "purchase" in lc.activity:
        parts.append(
            f"SELECT p.user_id, {local_day('p.ts', ctx.zone, ctx.as_of)} AS day FROM purchases p "
            f"WHERE p.user_id IS NOT NULL AND p.status = 'paid' AND p.ts <= {ctx.d}"
        )
    union = " UNION ".join(parts) or "SELECT NULL AS user_id, NULL AS day WHERE FALSE"
    return union


def lifecycle_sql(ctx: Ctx) -> str:
    lc = ctx.seg.lifecycle
    today = date_lit(ctx.d_local)
    n, a, s, c = lc.new_days, lc.active_days, lc.dormant_days, lc.churn_days
    gaps = (
        "SELECT user_id, day, date_diff('day', LAG(day) OVER (PARTITION BY user_id "
        f"ORDER BY day), day) AS gap FROM ({activity_days_sql(ctx)}) d"
    )
    per_user = (
        f"SELECT user_id, min(day) AS first_day, max(day) AS last_day, "
        f"max(CASE WHEN date_diff('day', day, {today}) <= {a} AND gap > {s} THEN 1 ELSE 0 END)"
        f" AS returned FROM ({gaps}) g GROUP BY user_id"
    )
    since_first = f"date_diff('day', first_day, {today})"
    since_last = f"date_diff('day', last_day, {today})"
    stage = (
        f"CASE WHEN {since_first} <= {n} THEN 'new' "
        f"WHEN {since_last} <= {a} AND returned = 1 THEN 'reactivated' "
        f"WHEN {since_last} <= {a} THEN 'active' "
        f"WHEN {since_last} <= {s} THEN 'at_risk' "
        f"WHEN {since_last} <= {c} THEN 'dormant' ELSE 'churned' END"
    )
    return (
        f"SELECT user_id, first_day, last_day, {since_last} AS days_since_last, "
        f"{stage} AS stage FROM ({per_user}) x"
    )


def tiers_sql(ctx: Ctx) -> str:
    t = ctx.seg.tiers
    if t is None:
        return "SELECT NULL AS user_id, NULL AS tier, NULL AS spend WHERE FALSE"
    spend = (
        "SELECT p.user_id, sum(p.amount_base) AS spend FROM purchases p "
        f"WHERE p.status = 'paid' AND p.user_id IS NOT NULL AND p.ts <= {ctx.d} "
        f"AND p.ts >= {ctx.ago(t.window_days)} GROUP BY p.user_id"
    )
    case = " ".join(
        f"WHEN coalesce(s.spend, 0) >= {level} THEN {lit(name)}"
        for name, level in reversed(t.levels)
    )
    return (
        f"SELECT u.user_id, CASE {case} END AS tier, "
        f"CAST(coalesce(s.spend, 0) AS DECIMAL(18,3)) AS spend "
        f"FROM users u LEFT JOIN ({spend}) s ON s.user_id = u.user_id "
        f"WHERE u.first_seen IS NULL OR u.first_seen <= {ctx.d}"
    )


def predictions_sql(ctx: Ctx) -> str:
    """The CLV prediction each customer had as of D: the latest `mcrm predict clv` run at or
    before D (mcrm.predict.run). Whether there is one is checked by the engine."""
    from mcrm.predict.run import predictions_sql as sql

    return sql(ctx.d)


RELATIONS = {
    "rfm": rfm_sql,
    "lifecycle": lifecycle_sql,
    "tiers": tiers_sql,
    "clv_prediction": predictions_sql,
}
