"""`mcrm predict clv`: summary, both fits, per-customer predictions, stored as one run.

Decisions (docs/predict.md says the same for users):

- **Units.** The summary is in days (integers, stored as such); the models are fitted in
  **weeks** (days ÷ 7), the unit of the published CDNOW parameters and of lifetimes'
  examples, so the stored `params` compare with them directly. A month is 30 days (30/7
  weeks), as in lifetimes' `customer_lifetime_value` with daily data.
- **Horizon** is a duration in days (`365d`, `52w`); CLV sums whole 30-day months, the last
  one cut at the horizon, so with no discount CLV = expected_purchases × expected_aov exactly.
- **Discount** is an *annual* rate (SPEC shows 0.1), turned into the monthly rate of
  analytics reference §4: d = (1 + d_a)^(1/12) − 1.
- **Connections.** The summary is read on a connection that is closed before the fit (it
  upgrades an older schema, as every writing command does); the connection that stores the
  run is opened after the fit, so the file is not held during it (DuckDB allows one writer).
- **Which run is "the" prediction.** Segments and templates evaluated as of T read the latest
  run whose as-of is at or before T (`run_for`), never a run that saw later data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcrm.errors import DataError, UsageError
from mcrm.output import Rows

if TYPE_CHECKING:
    import duckdb

    from mcrm.config import Workspace
    from mcrm.predict.models import BgNbd, GammaGamma

UNIT = "weeks"
DAYS_PER_UNIT = 7.0
MONTH_DAYS = 30.0
RHO_WARN = 0.3
NO_DROPOUT = 1e-3
"""Mean drop-out probability a/(a+b) below which the fit is reported as the no-drop-out
limit (a -> 0, b -> infinity: the likelihood keeps rising towards the NBD model)."""
HOMOGENEOUS = 1e4
"""a + b above which the drop-out probabilities' beta is reported as a point mass (the fit
follows a ridge of constant a/(a+b) towards it)."""
NO_RUN = "no CLV predictions yet: run `mcrm predict clv`"

COLUMNS = [
    "user_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_aov",
    "clv",
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class PredictionRun:
    run_id: int
    as_of: dt.datetime
    horizon_days: float
    discount_annual: float
    discount_monthly: float
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    customers: int
    repeaters: int
    totals: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    unit: str = UNIT

    def params(self) -> dict[str, Any]:
        """The `params` JSON stored with the run (and printed by the CLI)."""
        bg, gg = self.bgnbd, self.gamma_gamma
        return {
            "unit": self.unit,
            "bgnbd": {**bg.params(), "loglik": bg.loglik, "customers": bg.customers},
            "gamma_gamma": {**gg.params(), "loglik": gg.loglik, "customers": gg.customers},
        }


def check_settings(horizon_days: float, discount: float) -> None:
    if not math.isfinite(horizon_days) or horizon_days <= 0:
        raise UsageError(f"--horizon must be a positive duration, found {horizon_days:g} days")
    if horizon_days > 36500:
        raise UsageError("--horizon longer than 100 years is not a forecast", hint="e.g. 365d")
    if not math.isfinite(discount) or discount < 0:
        raise UsageError(
            f"--discount must be an annual rate >= 0, found {discount:g}",
            hint="0.1 means 10% a year; 0 means no discounting",
        )
    if discount >= 1:
        raise UsageError(
            f"--discount is an annual rate as a fraction, found {discount:g}",
            hint="0.1 means 10% a year (not 10)",
        )


def summarise(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime, zone: str, source: str = "purchases"
) -> dict[str, Any]:
    """The §2 summary as numpy arrays (user_id, frequency, recency, T, monetary_value), sorted
    by user_id; a paid order without a base-currency amount is an error naming its currency."""
    from mcrm.predict.summary import summary_sql, unconverted_sql

    bad = con.execute(unconverted_sql(as_of, source)).fetchall()
    if bad:
        cur, day, n = bad[0]
        raise DataError(
            f"{n} paid order(s) in {cur} have no amount in the base currency (first on {day})",
            hint="import fx rates for that currency (mcrm import fx-rates FILE)",
        )
    sql = f"SELECT * FROM ({summary_sql(as_of, zone, source)}) s ORDER BY s.user_id"
    arrays: dict[str, Any] = con.sql(sql).fetchnumpy()
    return arrays


def fit_and_predict(
    data: dict[str, Any], horizon_days: float, discount_annual: float
) -> tuple[BgNbd, GammaGamma, dict[str, Any], list[str]]:
    """Both fits on a summary (days) and every customer's predictions."""
    import numpy as np

    from mcrm.predict import models as M

    x = np.asarray(data["frequency"], dtype=np.float64)
    if len(x) == 0:
        raise M.ModelError(
            "no paid purchases up to the as-of time: nothing to predict",
            hint="import purchases first (mcrm import purchases FILE)",
        )
    tx = np.asarray(data["recency"], dtype=np.float64) / DAYS_PER_UNIT
    T = np.asarray(data["T"], dtype=np.float64) / DAYS_PER_UNIT
    z = np.asarray(data["monetary_value"], dtype=np.float64)
    warnings: list[str] = []
    bg = M.fit_bgnbd(x, tx, T)
    dropout = bg.a / (bg.a + bg.b)
    if dropout < NO_DROPOUT:
        warnings.append(
            f"bg/nbd: the data show almost no drop-out (a = {bg.a:.3g}, b = {bg.b:.3g}: a mean "
            f"drop-out probability of {dropout:.1g} per repeat purchase); the fit is at the "
            "no-drop-out limit, so P(alive) is about 1 for everyone and expected purchases are "
            "those of the plain NBD model"
        )
    elif bg.a + bg.b > HOMOGENEOUS:
        warnings.append(
            f"bg/nbd: customers seem to drop out alike (a = {bg.a:.3g}, b = {bg.b:.3g}: a "
            f"drop-out probability of {dropout:.3g} per repeat purchase, with almost no spread "
            "between customers); a and b are known only through a/(a+b) there, which is what "
            "the predictions use"
        )
    spend = M.spend_inputs(x, z)
    if spend.dropped:
        warnings.append(
            f"gamma-gamma: {spend.dropped} repeat customer(s) with a mean spend <= 0 left out "
            "of the spend fit"
        )
    if spend.rho is not None and abs(spend.rho) > RHO_WARN:
        warnings.append(
            f"gamma-gamma: purchase frequency and mean spend are correlated (Pearson ρ = "
            f"{spend.rho:.2f}, |ρ| > {RHO_WARN}); the model assumes they are independent, "
            "so expected_aov and clv are doubtful"
        )
    gg = M.fit_gamma_gamma(spend.x, spend.z)
    g = M.group(x, tx, T)
    horizon = horizon_days / DAYS_PER_UNIT
    period = MONTH_DAYS / DAYS_PER_UNIT
    monthly = M.monthly_rate(discount_annual)
    p_alive = bg.p_alive(g.x, g.tx, g.T)[g.inverse]
    ones = np.ones_like(g.x)
    value_g, purchases_g = M.clv(bg, ones, g.x, g.tx, g.T, horizon, period, monthly)
    aov = gg.expected_m(x, np.maximum(z, 0.0))
    out = {
        "p_alive": p_alive,
        "expected_purchases": purchases_g[g.inverse],
        "expected_aov": aov,
        "clv": aov * value_g[g.inverse],
    }
    for k, v in out.items():
        if not np.isfinite(v).all():
            raise M.ModelError(f"CLV prediction failed: {k} is not finite for some customers")
    return bg, gg, out, warnings


def predict_clv(
    ws: Workspace,
    horizon_days: float = 365.0,
    discount: float = 0.1,
    as_of: dt.datetime | None = None,
) -> PredictionRun:
    """Fit, predict and store one run (see the module docstring)."""
    import numpy as np
    import pyarrow as pa

    from mcrm.db import open_db

    check_settings(horizon_days, discount)
    t0 = time.perf_counter()
    d = as_of or _now()
    # a writing command: an older schema is upgraded as by imports, but a missing database is
    # the usual "no database yet" error rather than a new empty file
    with open_db(ws, write=ws.db_path.exists()) as con:
        data = summarise(con, d, ws.settings.timezone)
    bg, gg, pred, warnings = fit_and_predict(data, horizon_days, discount)
    from mcrm.predict.models import monthly_rate

    x = np.asarray(data["frequency"])
    repeaters = int((x > 0).sum())
    n = len(x)
    rep = x > 0
    totals = {
        "expected_purchases": float(pred["expected_purchases"].sum()),
        "clv": float(pred["clv"].sum()),
        "mean_clv": float(pred["clv"].mean()),
        "mean_p_alive_repeaters": float(pred["p_alive"][rep].mean()),
        "new_customer_expected_purchases": bg.expected_x(horizon_days / DAYS_PER_UNIT),
        "population_aov": gg.population_mean,
    }
    table = pa.table(
        {
            "user_id": pa.array(np.asarray(data["user_id"]).astype(str), pa.string()),
            "frequency": pa.array(np.asarray(data["frequency"], dtype=np.int64)),
            "recency": pa.array(np.asarray(data["recency"], dtype=np.int64)),
            "T": pa.array(np.asarray(data["T"], dtype=np.int64)),
            "monetary_value": pa.array(np.asarray(data["monetary_value"], dtype=np.float64)),
            **{k: pa.array(np.asarray(v, dtype=np.float64)) for k, v in pred.items()},
        }
    )
    with open_db(ws, write=True) as con:
        con.execute("BEGIN")
        try:
            run_id = int(con.execute("SELECT nextval('prediction_run_seq')").fetchall()[0][0])
            run = PredictionRun(
                run_id,
                d,
                float(horizon_days),
                float(discount),
                monthly_rate(discount),
                bg,
                gg,
                n,
                repeaters,
                totals,
                warnings,
                round(time.perf_counter() - t0, 3),
            )
            con.execute(
                "INSERT INTO prediction_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    d,
                    _now(),
                    run.horizon_days,
                    run.discount_annual,
                    run.discount_monthly,
                    run.unit,
                    json.dumps(run.params()),
                    n,
                    repeaters,
                    json.dumps(warnings),
                    run.seconds,
                ],
            )
            con.register("_pred", table)
            con.execute(
                f'INSERT INTO predictions SELECT {run_id}, user_id, frequency, recency, "T", '
                "CAST(monetary_value AS DECIMAL(18,3)), p_alive, expected_purchases, "
                "CAST(expected_aov AS DECIMAL(18,3)), CAST(clv AS DECIMAL(18,3)) FROM _pred"
            )
            con.unregister("_pred")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return run


def prediction_rows(ws: Workspace, run_id: int, limit: int | None = None) -> Rows:
    """A run's customers, highest CLV first (ties by user id)."""
    from mcrm.db import open_db

    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    with open_db(ws) as con:
        rows = con.execute(
            f"SELECT {cols} FROM predictions WHERE run_id = ? ORDER BY clv DESC, user_id{lim}",
            [run_id],
        ).fetchall()
    return Rows(list(COLUMNS), rows, percent_columns=frozenset({"p_alive"}))


# ---------------------------------------------------------------------------------------------
# the run segments and templates read


def latest_run_sql(as_of_sql: str) -> str:
    """The run id segments and templates read as of D (portable SQL): the latest as-of at or
    before D, the highest run id among equals."""
    return (
        "SELECT max(pr.run_id) FROM prediction_runs pr WHERE pr.as_of = "
        f"(SELECT max(pr2.as_of) FROM prediction_runs pr2 WHERE pr2.as_of <= {as_of_sql})"
    )


def predictions_sql(as_of_sql: str) -> str:
    """One row per customer of that run (a user merged after the run keeps one row: the
    highest CLV, then the highest p_alive)."""
    return (
        "SELECT q.user_id, q.p_alive, q.expected_purchases, q.expected_aov, q.clv, "
        'q.frequency, q.recency, q."T", q.monetary_value, q.run_id FROM ('
        "SELECT p.*, row_number() OVER (PARTITION BY p.user_id ORDER BY p.clv DESC, "
        "p.p_alive DESC, p.expected_purchases DESC) AS rn FROM predictions p "
        f"WHERE p.run_id = ({latest_run_sql(as_of_sql)})) q WHERE q.rn = 1"
    )


def run_for(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> tuple[int, dt.datetime]:
    """(run id, as-of) of the run read as of `as_of`, or a DataError saying why there is none."""
    rows = con.execute(
        "SELECT run_id, as_of FROM prediction_runs WHERE as_of <= ? "
        "ORDER BY as_of DESC, run_id DESC LIMIT 1",
        [as_of],
    ).fetchall()
    if rows:
        return int(rows[0][0]), rows[0][1]
    first = con.execute("SELECT min(as_of) FROM prediction_runs").fetchall()[0][0]
    if first is None:
        raise DataError(NO_RUN)
    raise DataError(
        f"no CLV predictions as of {as_of:%Y-%m-%dT%H:%M}Z or earlier "
        f"(the first run is as of {first:%Y-%m-%dT%H:%M}Z)",
        hint="run `mcrm predict clv --as-of ...` at or before that time",
    )
