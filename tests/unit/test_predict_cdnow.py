"""CLV on CDNOW: the summary, both fits and the predictions reproduce the published numbers.

Data: the CDNOW 1/10 systematic sample (2,357 customers of the Q1 1997 cohort; Fader & Hardie
2001, "Forecasting Repeat Sales at CDNOW", Interfaces 31(3); data courtesy of Peter Fader and
Bruce Hardie / CDNOW), as shipped inside the `lifetimes` wheel (a test-only dependency). The
files are read by path, never through `lifetimes.datasets`, and never committed here.

Published values (analytics reference §5): BG/NBD r, α, a, b = 0.2426, 4.4135, 0.7929, 2.4258
and LL −9582.4 (Fader, Hardie & Lee 2005); E[Y(39) | 2, 30.43, 38.86] = 1.226 (FHL 2005
spreadsheet); Gamma-Gamma p, q, γ = 6.25, 3.74, 15.44 and LL −4055.92 (Fader & Hardie 2013).
Where lifetimes has the same function, it is run on the same inputs as an independent
computation.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcrm.predict import models as M
from mcrm.predict.run import summarise

SPEC = importlib.util.find_spec("lifetimes")
pytestmark = pytest.mark.skipif(SPEC is None, reason="lifetimes (test extra) not installed")
DATA = Path(SPEC.origin).parent / "datasets" if SPEC and SPEC.origin else Path()
CAL_END = dt.datetime(1997, 9, 30, 23, 59, 59)  # calibration: 39 weeks, 1997-09-30 inclusive


def sample_rows() -> list[tuple[str, dt.date, Decimal]]:
    """CDNOW_sample.txt: master id, sample id, YYYYMMDD, CDs, dollars (CRLF, leading spaces);
    the sample id without its zero padding is the summary CSVs' ID."""
    out = []
    text = (DATA / "CDNOW_sample.txt").read_text(encoding="ascii")
    for line in text.splitlines():
        if not line.strip():
            continue
        _, sid, day, _, dollars = line.split()
        out.append((str(int(sid)), dt.datetime.strptime(day, "%Y%m%d").date(), Decimal(dollars)))
    return out


def read_csv(name: str) -> dict[str, dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return {r["ID"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def summary() -> Iterator[dict[str, Any]]:
    """mcrm's §2 summary SQL over CDNOW loaded as paid purchases (zone UTC, days)."""
    import pyarrow as pa

    from mcrm.db import connect, create_schema

    rows = sample_rows()
    con = connect(":memory:")
    try:
        create_schema(con)  # the real purchases table
        table = pa.table(
            {
                "order_id": [f"o{i}" for i in range(len(rows))],
                "user_id": [r[0] for r in rows],
                "ts": [dt.datetime.combine(r[1], dt.time(12)) for r in rows],
                "amount": pa.array([r[2] for r in rows], pa.decimal128(18, 3)),
            }
        )
        con.register("cdnow", table)
        con.execute(
            "INSERT INTO purchases (order_id, user_id, ts, amount, currency, amount_base, status) "
            "SELECT order_id, user_id, ts, amount, 'USD', amount, 'paid' FROM cdnow"
        )
        data = summarise(con, CAL_END, "UTC")
        data["_customer_days"] = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT user_id, CAST(ts AS DATE) FROM purchases "
            f"WHERE ts <= TIMESTAMP '{CAL_END}')"
        ).fetchall()[0][0]
        data["_calibration_rows"] = con.execute(
            f"SELECT count(*) FROM purchases WHERE ts <= TIMESTAMP '{CAL_END}'"
        ).fetchall()[0][0]
        yield data
    finally:
        con.close()


def weeks(data: dict[str, Any]) -> tuple[Any, Any, Any]:
    x = np.asarray(data["frequency"], dtype=float)
    return x, np.asarray(data["recency"]) / 7.0, np.asarray(data["T"]) / 7.0


def test_summary_checks_of_the_reference(summary: dict[str, Any]) -> None:
    assert summary["_calibration_rows"] == 4960
    assert summary["_customer_days"] == 4814
    x = np.asarray(summary["frequency"])
    assert len(x) == 2357
    assert int(x.sum()) == 2457
    assert int((x > 0).sum()) == 946
    assert int(np.asarray(summary["frequency"] + 1).sum()) == 4814
    # customer 1's first purchase is 1997-01-01: T = 272 days = 38.86 weeks
    i = list(summary["user_id"]).index("1")
    assert int(summary["T"][i]) == 272


def test_summary_reproduces_both_csvs(summary: dict[str, Any]) -> None:
    plain = read_csv("cdnow_customers_summary.csv")
    with_tx = read_csv("cdnow_customers_summary_with_transactions.csv")
    assert set(summary["user_id"]) == set(plain) == set(with_tx)
    for i, uid in enumerate(summary["user_id"]):
        a, b = plain[uid], with_tx[uid]
        x, tx, T = int(summary["frequency"][i]), summary["recency"][i], summary["T"][i]
        assert x == int(a["frequency"]) == int(b["x"]), uid
        assert abs(tx / 7 - float(a["recency"])) <= 0.005 + 1e-9, uid
        assert abs(T / 7 - float(a["T"])) <= 0.005 + 1e-9, uid
        assert abs(tx / 7 - float(b["t_x"])) <= 0.005 + 1e-9, uid
        assert abs(summary["monetary_value"][i] - float(b["zbar"])) <= 0.005 + 1e-9, uid


@pytest.fixture(scope="module")
def bg(summary: dict[str, Any]) -> M.BgNbd:
    return M.fit_bgnbd(*weeks(summary))


@pytest.fixture(scope="module")
def gg(summary: dict[str, Any]) -> M.GammaGamma:
    s = M.spend_inputs(summary["frequency"], summary["monetary_value"])
    assert s.dropped == 0
    return M.fit_gamma_gamma(s.x, s.z)


def test_bgnbd_fit_reproduces_published_parameters(bg: M.BgNbd) -> None:
    assert bg.r == pytest.approx(0.2426, abs=0.001)
    assert bg.alpha == pytest.approx(4.4135, abs=0.001)
    assert bg.a == pytest.approx(0.7929, abs=0.001)
    assert bg.b == pytest.approx(2.4258, abs=0.001)
    assert bg.loglik == pytest.approx(-9582.4, abs=0.05)
    assert bg.customers == 2357


def test_bgnbd_is_unit_free_except_alpha(summary: dict[str, Any], bg: M.BgNbd) -> None:
    x, tx, T = weeks(summary)
    days = M.fit_bgnbd(x, tx * 7, T * 7)
    assert (days.r, days.a, days.b) == pytest.approx((bg.r, bg.a, bg.b), rel=1e-4)
    assert days.alpha / 7 == pytest.approx(bg.alpha, rel=1e-4)
    # LL changes by the constant Σx·ln 7 (the density of the purchase times)
    assert days.loglik == pytest.approx(bg.loglik - x.sum() * np.log(7), abs=1e-3)


def test_gamma_gamma_fit_reproduces_published_parameters(gg: M.GammaGamma) -> None:
    assert gg.p == pytest.approx(6.25, abs=0.01)
    assert gg.q == pytest.approx(3.74, abs=0.01)
    assert gg.gamma == pytest.approx(15.44, abs=0.01)
    assert gg.loglik == pytest.approx(-4055.92, abs=0.01)
    assert gg.customers == 946


def test_published_checks_on_the_fit(bg: M.BgNbd) -> None:
    assert bg.expected_y(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.0005)
    assert bg.p_alive([2], [30.43], [38.86])[0] == pytest.approx(0.7266, abs=0.0001)
    assert bg.p_alive([0], [0], [38.86])[0] == 1.0  # one-time buyers cannot have dropped out


def test_derived_values_of_the_published_parameters() -> None:
    pub = M.BgNbd(0.2426, 4.4135, 0.7929, 2.4258, float("nan"), 0)
    assert pub.p_alive([2], [30.43], [38.86])[0] == pytest.approx(0.7266, abs=0.0001)
    assert pub.expected_x(39) == pytest.approx(1.1951, abs=0.0001)
    assert pub.expected_y(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.0005)
    assert M.GammaGamma(6.25, 3.74, 15.44, 0.0, 0).population_mean == pytest.approx(
        35.22, abs=0.005
    )


def _lifetimes_bg(bg: M.BgNbd, scale: float = 1.0) -> Any:
    import pandas as pd
    from lifetimes import BetaGeoFitter

    f = BetaGeoFitter()
    f.params_ = pd.Series({"r": bg.r, "alpha": bg.alpha * scale, "a": bg.a, "b": bg.b})
    f.predict = f.conditional_expected_number_of_purchases_up_to_time  # what fit() sets
    return f


def test_predictions_agree_with_lifetimes(summary: dict[str, Any], bg: M.BgNbd) -> None:
    x, tx, T = weeks(summary)
    f = _lifetimes_bg(bg)
    for t in (1.0, 39.0, 52.0, 156.0):
        ours = bg.expected_y(t, x, tx, T)
        theirs = np.asarray(f.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T))
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)
        assert bg.expected_x(t) == pytest.approx(
            float(f.expected_number_of_purchases_up_to_time(t))
        )
    np.testing.assert_allclose(
        bg.p_alive(x, tx, T), np.asarray(f.conditional_probability_alive(x, tx, T)), rtol=1e-9
    )


def test_expected_aov_agrees_with_lifetimes(summary: dict[str, Any], gg: M.GammaGamma) -> None:
    import pandas as pd
    from lifetimes import GammaGammaFitter

    f = GammaGammaFitter()
    f.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.gamma})
    x = pd.Series(np.asarray(summary["frequency"], dtype=float))
    z = pd.Series(np.asarray(summary["monetary_value"]))
    theirs = np.asarray(f.conditional_expected_average_profit(x, z))
    np.testing.assert_allclose(gg.expected_m(x, z), theirs, rtol=1e-10)


def test_clv_agrees_with_lifetimes(summary: dict[str, Any], bg: M.BgNbd, gg: M.GammaGamma) -> None:
    """lifetimes' `customer_lifetime_value` on daily data: 12 months of 30 days, 1% a month."""
    import pandas as pd
    from lifetimes import GammaGammaFitter

    x, tx, T = weeks(summary)
    daily = M.BgNbd(bg.r, bg.alpha * 7, bg.a, bg.b, bg.loglik, bg.customers)
    z = np.asarray(summary["monetary_value"])
    aov = gg.expected_m(x, z)
    ours, purchases = M.clv(daily, aov, x, tx * 7, T * 7, 360.0, 30.0, 0.01)
    f = GammaGammaFitter()
    f.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.gamma})
    theirs = f.customer_lifetime_value(
        _lifetimes_bg(bg, 7.0),
        pd.Series(x),
        pd.Series(tx * 7),
        pd.Series(T * 7),
        pd.Series(z),
        time=12,
        discount_rate=0.01,
        freq="D",
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-7)
    np.testing.assert_allclose(purchases, daily.expected_y(360.0, x, tx * 7, T * 7), rtol=1e-12)
