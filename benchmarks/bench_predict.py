"""SPEC §7.1 bench: the CLV fit (summary + BG/NBD + Gamma-Gamma + predictions) on 100k
customers takes at most 30 s.

Data: 100,000 customers (10,000 at `--scale small`) simulated the way the two models tell it,
seeded: acquisition uniform over the two years before 2026-11-15, Poisson purchases at a rate
λ ~ Gamma(shape 0.6, rate 12 days), drop-out after each repeat purchase with p ~ Beta(1.2, 4), and
order values Gamma(6, ν) with ν ~ Gamma(4, 1/15) (about 30 EUR). The orders go straight into
the `purchases` table of a fresh mcrm database (`create_schema`, a pyarrow insert) in
`benchmarks/.data/predict-<scale>/`, with `mcrm.yaml` `timezone: Europe/Prague`; a
`manifest.json` written last marks it complete and is reused afterwards.

`predict.clv` times `mcrm.predict.run.predict_clv(ws, 365, 0.1, as_of)`: opening the database,
the summary SQL, both fits, every customer's P(alive), expected purchases, E[M] and 13-month
discounted CLV, and the stored run (committed). Earlier runs are deleted (untimed) first.

Baseline, same run, same orders: the same pipeline in `lifetimes` 0.11 —
`summary_data_from_transaction_data` (days in the workspace zone), `BetaGeoFitter().fit` on
weeks, `GammaGammaFitter().fit` on the repeaters and `customer_lifetime_value` (12 months of
4.345 weeks, lifetimes' own month, at mcrm's monthly rate for 10% a year) — on a pandas
DataFrame built before timing. It is the library mcrm's numbers are checked against; it fits
every customer row (no grouping) with autograd gradients. Without lifetimes installed the
baseline is a SKIP and mcrm's time is shown alone. The simulation's parameters in weeks are
r = 0.6, α = 12/7, a = 1.2, b = 4: both fits should land near them (the log shows them).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.core import Context, Result, Timing, bench, compare, interleaved, timed

TARGET_S = 30.0
CUSTOMERS = 100_000
RUNS = 2
ZONE = "Europe/Prague"
END = dt.datetime(2026, 11, 15, 22, 59)  # naive UTC: 23:59 in Prague
SEED = 7
INSTALL = "pip install -e '.[bench]'"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def simulate(n: int, seed: int = SEED) -> dict[str, Any]:
    """Orders of n customers (vectorised): user ids, UTC timestamps, amounts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    span = 730.0
    start = rng.uniform(0, span, n)  # days after END - span
    lam = rng.gamma(0.6, 1 / 12.0, n)  # purchases per day
    drop = rng.beta(1.2, 4.0, n)
    nu = rng.gamma(4.0, 1 / 15.0, n)
    k = 40  # at most 40 repeat purchases simulated per customer
    gaps = rng.exponential(1.0, (n, k)) / lam[:, None]
    times = start[:, None] + np.cumsum(gaps, axis=1)
    # repeat purchase j (1-based) happens if the customer has not dropped out after j-1 of them
    alive_for = rng.geometric(drop)  # repeat purchases made before dropping out (>= 1)
    keep = (np.arange(1, k + 1)[None, :] <= alive_for[:, None]) & (times <= span)
    cust = np.concatenate([np.arange(n), np.nonzero(keep)[0]])
    when = np.concatenate([start, times[keep]])
    amount = rng.gamma(6.0, 1.0, len(cust)) / nu[cust]
    base = END - dt.timedelta(days=span)
    ts = np.datetime64(base, "us") + (when * 86_400e6).astype("timedelta64[us]")
    return {
        "user_id": np.char.add("c", cust.astype(str)),
        "ts": ts,
        "amount": np.round(amount, 2),
    }


def ensure_db(ctx: Context) -> tuple[Path, int, int]:
    """The bench workspace (root, customers, orders), built once per scale."""
    import pyarrow as pa

    import mcrm.db

    n = ctx.size(CUSTOMERS)
    root = ctx.data_dir / f"predict-{ctx.scale}"
    manifest = root / "manifest.json"
    want = {"customers": n, "seed": SEED, "end": END.isoformat(), "zone": ZONE}
    if manifest.exists() and not ctx.regen:
        doc = json.loads(manifest.read_text())
        if doc.get("args") == want and (root / ".mcrm" / "mcrm.duckdb").exists():
            return root, n, int(doc["orders"])
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    (root / ".mcrm").mkdir(parents=True)
    (root / "mcrm.yaml").write_text(f"timezone: {ZONE}\nbase_currency: EUR\n")
    sim = simulate(n)
    orders = len(sim["user_id"])
    table = pa.table(
        {
            "order_id": pa.array([f"o{i}" for i in range(orders)], pa.string()),
            "user_id": pa.array(sim["user_id"].tolist(), pa.string()),
            "ts": pa.array(sim["ts"], pa.timestamp("us")),
            "amount": pa.array(sim["amount"], pa.float64()),
        }
    )
    con = mcrm.db.connect(str(root / ".mcrm" / "mcrm.duckdb"))
    try:
        mcrm.db.create_schema(con)
        con.register("sim", table)
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, status) "
            "SELECT order_id, user_id, ts, CAST(amount AS DECIMAL(18,3)), 'EUR', "
            "CAST(amount AS DECIMAL(18,3)), 'paid' FROM sim"
        )
        con.unregister("sim")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    manifest.write_text(json.dumps({"args": want, "orders": orders}, indent=2) + "\n")
    return root, n, orders


def reset(root: Path) -> None:
    import mcrm.db

    con = mcrm.db.connect(str(root / ".mcrm" / "mcrm.duckdb"))
    try:
        con.execute("DELETE FROM predictions")
        con.execute("DELETE FROM prediction_runs")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def run_mcrm(root: Path, out: list[Any]) -> Timing:
    from mcrm.config import open_workspace
    from mcrm.predict.run import predict_clv

    reset(root)
    ws = open_workspace(str(root), {}, root)
    return timed(lambda: out.append(predict_clv(ws, 365.0, 0.1, END)))


def frame(root: Path) -> Any:
    import mcrm.db

    con = mcrm.db.connect(str(root / ".mcrm" / "mcrm.duckdb"), read_only=True)
    try:
        return con.execute(
            f"SELECT user_id AS customer_id, (ts AT TIME ZONE 'UTC') AT TIME ZONE '{ZONE}' "
            "AS date, CAST(amount_base AS DOUBLE) AS amount FROM purchases"
        ).df()
    finally:
        con.close()


def run_lifetimes(lt: Any, df: Any, end: Any, out: list[Any]) -> Timing:
    def go() -> None:
        s = lt.utils.summary_data_from_transaction_data(
            df, "customer_id", "date", monetary_value_col="amount", observation_period_end=end
        )
        bgf = lt.BetaGeoFitter().fit(s["frequency"], s["recency"] / 7, s["T"] / 7)
        rep = s[s["frequency"] > 0]
        ggf = lt.GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
        clv = ggf.customer_lifetime_value(
            bgf,
            s["frequency"],
            s["recency"] / 7,
            s["T"] / 7,
            s["monetary_value"],
            time=12,
            discount_rate=0.00797,
            freq="W",
        )
        out.append((bgf.params_, ggf.params_, float(clv.sum())))

    return timed(go)


@bench("predict")
def predict(ctx: Context) -> Iterator[Result]:
    """CLV fit (summary, BG/NBD, Gamma-Gamma, predictions, stored) on 100k customers."""
    root, n, orders = ensure_db(ctx)
    import mcrm.predict.run  # noqa: F401  (imports are not what is measured)

    log(f"  predict.clv: {n:,} customers, {orders:,} orders; best of {RUNS}")
    ours_out: list[Any] = []
    try:
        lt: Any = importlib.import_module("lifetimes")
        importlib.import_module("lifetimes.utils")
        pd: Any = importlib.import_module("pandas")
    except ImportError as e:
        log(f"  SKIP predict.clv baseline: {e}; install it with: {INSTALL}")
        ours = [run_mcrm(root, ours_out) for _ in range(RUNS)]
        yield Result(
            "predict.clv",
            f"<= {TARGET_S:g} s",
            min(t.wall for t in ours),
            "s",
            min(t.wall for t in ours) <= TARGET_S,
            stat=f"min of {len(ours)}",
            samples=[round(t.wall, 4) for t in ours],
            cpu=min(t.cpu for t in ours),
            note=f"baseline SKIP: lifetimes not installed ({INSTALL})",
            extra={"customers": n, "orders": orders},
        )
        return
    df = frame(root)
    end = pd.Timestamp(END.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(ZONE)).replace(tzinfo=None))
    theirs_out: list[Any] = []
    ours, base = interleaved(
        RUNS, lambda: run_mcrm(root, ours_out), lambda: run_lifetimes(lt, df, end, theirs_out)
    )
    run = ours_out[-1]
    bg, gg = run.bgnbd, run.gamma_gamma
    lt_bg, lt_gg, lt_clv = theirs_out[-1]
    log(
        f"  mcrm: r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f}; "
        f"p={gg.p:.4f} q={gg.q:.4f} gamma={gg.gamma:.4f}; total CLV {run.totals['clv']:,.0f}"
    )
    log(
        f"  lifetimes: r={lt_bg['r']:.4f} alpha={lt_bg['alpha']:.4f} a={lt_bg['a']:.4f} "
        f"b={lt_bg['b']:.4f}; p={lt_gg['p']:.4f} q={lt_gg['q']:.4f} v={lt_gg['v']:.4f}; "
        f"total CLV {lt_clv:,.0f}"
    )
    r = compare(
        "predict.clv",
        f"<= {TARGET_S:g} s",
        ours,
        base,
        "lifetimes summary+fits+CLV",
        lambda m, _b: m <= TARGET_S,
        note="baseline: the same pipeline in lifetimes on a prebuilt DataFrame",
        extra={
            "customers": n,
            "orders": orders,
            "repeaters": run.repeaters,
            "mcrm_params": run.params(),
            "lifetimes_params": {
                "bgnbd": {k: float(v) for k, v in lt_bg.items()},
                "gamma_gamma": {k: float(v) for k, v in lt_gg.items()},
            },
            "lifetimes": lt.__version__,
        },
    )
    yield r
