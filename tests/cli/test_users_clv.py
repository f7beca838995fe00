"""`mcrm users show` and the customer's CLV prediction (SPEC §3.3; docs/predict.md).

The profile reads the run segments and templates read as of T: the latest `mcrm predict clv`
run whose as-of is at or before T. Runs are made by the real command on the generated customers
of tests/cli/test_predict.py; what the profile shows is compared with each run's rows.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from tests.cli.test_predict import AS_OF, loaded
from tests.conftest import Cli
from tests.segdata import SegWS, iso


def show(cli: Cli, w: SegWS, uid: str, as_of: dt.datetime, *args: str) -> Any:
    return cli(w.root, "users", "show", uid, "--as-of", iso(as_of), *args)


def clv_of(cli: Cli, w: SegWS, uid: str, as_of: dt.datetime) -> dict[str, Any] | None:
    r = show(cli, w, uid, as_of, "-f", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    return (data.get("analytics") or {}).get("clv")


def same(shown: dict[str, Any], printed: dict[str, Any]) -> None:
    assert shown["p_alive"] == pytest.approx(float(printed["p_alive"]))
    assert shown["expected_purchases"] == pytest.approx(float(printed["expected_purchases"]))
    assert Decimal(str(shown["expected_aov"])) == Decimal(str(printed["expected_aov"]))
    assert Decimal(str(shown["clv"])) == Decimal(str(printed["clv"]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SegWS, dict[str, Any]]:
    """Two real runs (`mcrm predict clv`'s own function): as of AS_OF, and two days later
    with a 30-day horizon; each run's rows as `predict clv` prints them."""
    from mcrm import api
    from mcrm.predict.run import prediction_rows

    w, _ = loaded(tmp_path_factory.mktemp("users_clv"))
    w.load("users", [{"user_id": "nobuy", "first_name": "Nora"}])
    out = {}
    for name, as_of, horizon in (
        ("first", AS_OF, 365.0),
        ("later", AS_OF + dt.timedelta(days=2), 30.0),
    ):
        run = api.predict_clv(w.ws, horizon_days=horizon, as_of=as_of)
        rows = prediction_rows(w.ws, run.run_id)
        out[name] = {r[0]: dict(zip(rows.columns, r, strict=True)) for r in rows.rows}
    return w, out


def test_profile_shows_the_latest_run_as_of_t(
    runs: tuple[SegWS, dict[str, Any]], cli: Cli
) -> None:
    w, printed = runs
    uid = sorted(set(printed["first"]) & set(printed["later"]))[0]
    got = clv_of(cli, w, uid, AS_OF + dt.timedelta(hours=1))
    assert got is not None
    same(got, printed["first"][uid])
    assert got["horizon_days"] == 365 and got["currency"] == "EUR"
    assert got["run_as_of"].startswith(AS_OF.isoformat())
    # after the second run (another horizon): that one
    got = clv_of(cli, w, uid, AS_OF + dt.timedelta(days=3))
    assert got is not None
    same(got, printed["later"][uid])
    assert got["horizon_days"] == 30
    assert Decimal(str(got["clv"])) != Decimal(str(printed["first"][uid]["clv"]))
    # before any run: no prediction saw that time, so none is shown
    assert clv_of(cli, w, uid, AS_OF - dt.timedelta(days=1)) is None


def test_no_prediction_for_the_user_shows_nothing(
    runs: tuple[SegWS, dict[str, Any]], cli: Cli
) -> None:
    w, printed = runs
    assert "nobuy" not in printed["first"]
    assert clv_of(cli, w, "nobuy", AS_OF + dt.timedelta(hours=1)) is None
    r = show(cli, w, "nobuy", AS_OF + dt.timedelta(hours=1), "-f", "table")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("nobuy Nora")  # the text profile (not JSON)
    assert "CLV" not in r.stdout and "p_alive" not in r.stdout


def test_analytics_line_in_text(runs: tuple[SegWS, dict[str, Any]], cli: Cli) -> None:
    w, printed = runs
    uid = sorted(printed["first"])[0]
    o = printed["first"][uid]
    r = show(cli, w, uid, AS_OF + dt.timedelta(hours=1), "-f", "table")
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("analytics: "))
    assert f"CLV {Decimal(str(o['clv'])):.3f} EUR over 365 days" in line
    assert f"p_alive {float(o['p_alive']):.0%}" in line
    assert f"{float(o['expected_purchases']):.2f} expected purchases" in line
    assert f"expected AOV {Decimal(str(o['expected_aov'])):.3f}" in line
    assert f"as of {AS_OF:%Y-%m-%dT%H:%M:%S}Z)" in line  # the run's as-of
    # with segments defined, the same line carries lifecycle and RFM too
    w.write_segments({"segments": {"all": {"where": {"attr": "user_id", "exists": True}}}})
    try:
        r = show(cli, w, uid, AS_OF + dt.timedelta(hours=1), "-f", "table")
        line = next(x for x in r.stdout.splitlines() if x.startswith("analytics: "))
        assert "lifecycle " in line and "RFM " in line and "CLV " in line
    finally:
        (w.root / "segments.yaml").unlink()
