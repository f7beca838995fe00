"""`mcrm predict clv` end to end on a small generated workspace, its errors, and what reads its
runs: the `p_alive` / `clv` segment predicates and the templates' `prediction`.

Data: 240 customers generated with a seeded `random.Random` the way BG/NBD tells it (Poisson
purchases at a customer-specific rate, drop-out after a purchase with a customer-specific
probability), in a Europe/Prague workspace, plus refunded orders and orders after the as-of
time that must be ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Cli
from tests.segdata import SegWS

ZONE = "Europe/Prague"
AS_OF = dt.datetime(2026, 6, 30, 12, 0)  # naive UTC
AS_OF_ARG = "2026-06-30T12:00:00Z"
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


def generate(n: int = 240, seed: int = 4, repeat: bool = True) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = dt.datetime(2025, 7, 1, 9, 0)
    rows: list[dict[str, Any]] = []
    k = 0
    for u in range(n):
        uid = f"c{u:03d}"
        rate = rng.gammavariate(0.8, 1 / 20)  # purchases per day
        drop = rng.betavariate(1.0, 4.0)
        mean = rng.gammavariate(6.0, 8.0)
        t = start + dt.timedelta(days=rng.uniform(0, 330))
        while t <= AS_OF + dt.timedelta(days=20):
            k += 1
            status = "refunded" if rng.random() < 0.05 else "paid"
            amount = round(Decimal(rng.gammavariate(6.0, mean / 6.0)), 2)
            rows.append(
                {
                    "order_id": f"o{k}",
                    "user_id": uid,
                    "timestamp": t,
                    "amount": amount,
                    "currency": "EUR",
                    "status": status,
                }
            )
            if not repeat or rng.random() < drop:
                break
            t += dt.timedelta(days=rng.expovariate(max(rate, 1e-4)))
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """Plain-Python (x, t_x, T) in days, analytics reference §2."""
    z = ZoneInfo(ZONE)
    e = AS_OF.replace(tzinfo=dt.UTC).astimezone(z).date()
    days: dict[str, set[dt.date]] = defaultdict(set)
    for r in rows:
        if r["status"] == "paid" and r["timestamp"] <= AS_OF:
            days[r["user_id"]].add(r["timestamp"].replace(tzinfo=dt.UTC).astimezone(z).date())
    return {u: (len(d) - 1, (max(d) - min(d)).days, (e - min(d)).days) for u, d in days.items()}


def loaded(tmp_path: Path, rows: list[dict[str, Any]] | None = None) -> tuple[SegWS, list[Any]]:
    w = SegWS(tmp_path / "ws", timezone=ZONE)
    data = generate() if rows is None else rows
    w.load("purchases", data)
    return w, data


def predict(cli: Cli, w: SegWS, *args: str) -> Any:
    return cli(w.root, "predict", "clv", "--as-of", AS_OF_ARG, *args)


def test_predict_clv_end_to_end(tmp_path: Path, cli: Cli) -> None:
    w, rows = loaded(tmp_path)
    r = predict(cli, w, "--format", "json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    want = summary(rows)
    assert [list(o) for o in out[:1]] == [COLUMNS]
    assert {o["user_id"] for o in out} == set(want)
    for o in out:
        assert (o["frequency"], o["recency"], o["T"]) == want[o["user_id"]]
        assert 0 <= o["p_alive"] <= 1
        if o["frequency"] == 0:
            assert o["p_alive"] == 1.0
        assert o["expected_purchases"] > 0
        assert Decimal(o["clv"]) >= 0 and Decimal(o["expected_aov"]) > 0
    clvs = [Decimal(o["clv"]) for o in out]
    assert clvs == sorted(clvs, reverse=True)
    # somebody did drop out: P(alive) is a real probability here
    assert min(o["p_alive"] for o in out) < 0.5
    err = r.stderr
    assert "BG/NBD (time in weeks): r=" in err and "Gamma-Gamma (" in err
    assert f"{len(want)} customers" in err
    runs = w.query(
        "SELECT run_id, as_of, horizon_days, discount_annual, unit, params, customers, repeaters "
        "FROM prediction_runs"
    )
    assert len(runs) == 1
    run_id, as_of, horizon, discount, unit, params, customers, repeaters = runs[0]
    assert (as_of, horizon, discount, unit) == (AS_OF, 365.0, 0.1, "weeks")
    assert customers == len(want) and repeaters == sum(1 for v in want.values() if v[0] > 0)
    p = json.loads(params)
    assert set(p["bgnbd"]) >= {"r", "alpha", "a", "b", "loglik"}
    assert set(p["gamma_gamma"]) >= {"p", "q", "gamma", "loglik"}
    stored = w.query("SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])
    assert stored == [(len(want),)]


def test_no_discount_clv_is_purchases_times_aov(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)
    r = predict(cli, w, "--discount", "0", "--horizon", "26w", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    for row in rows:
        want = float(row["expected_purchases"]) * float(row["expected_aov"])
        assert float(row["clv"]) == pytest.approx(want, rel=1e-4, abs=0.002)
    assert w.query("SELECT horizon_days, discount_monthly FROM prediction_runs") == [(182.0, 0.0)]


def test_longer_horizon_and_discount_move_clv_the_right_way(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)

    def total(*args: str) -> float:
        r = predict(cli, w, *args, "--format", "json")
        assert r.exit_code == 0, r.stderr
        return sum(float(o["clv"]) for o in json.loads(r.stdout))

    base = total()
    assert total("--horizon", "730d") > base
    assert total("--discount", "0.5") < base < total("--discount", "0")


def test_limit_and_out(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)
    target = w.root / "top.csv"
    r = predict(cli, w, "--limit", "5", "--out", str(target))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 5 and list(rows[0]) == COLUMNS


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--horizon", "abc"], "--horizon: cannot read 'abc' as a duration", "365d"),
        (["--horizon", "12m"], "cannot read '12m'", "months and years vary in length"),
        (["--horizon", "0d"], "--horizon must be longer than 0 days", None),
        (["--discount", "-0.1"], "--discount must be an annual rate >= 0", "10% a year"),
        (["--discount", "10"], "--discount is an annual rate as a fraction", "not 10"),
    ],
)
def test_bad_arguments_are_usage_errors(
    tmp_path: Path, cli: Cli, args: list[str], message: str, hint: str | None
) -> None:
    w, _ = loaded(tmp_path, generate(30))
    r = predict(cli, w, *args)
    assert r.exit_code == 2, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("mcrm: error: ") and message in first
    if hint:
        assert hint in r.stderr
    assert "Traceback" not in r.stderr
    assert w.query("SELECT count(*) FROM prediction_runs") == [(0,)]


def test_no_database_yet(tmp_path: Path, cli: Cli) -> None:
    w = SegWS(tmp_path / "empty", timezone=ZONE)
    r = predict(cli, w)
    assert r.exit_code == 3
    assert r.stderr.startswith("mcrm: error: no database yet")


def test_no_purchases(tmp_path: Path, cli: Cli) -> None:
    w = SegWS(tmp_path / "events_only", timezone=ZONE)
    w.load("events", [{"event_id": "e1", "user_id": "u1", "name": "open", "timestamp": AS_OF}])
    r = predict(cli, w)
    assert r.exit_code == 3
    assert r.stderr.startswith("mcrm: error: no paid purchases up to the as-of time")
    assert "hint: import purchases first" in r.stderr


def test_only_one_time_buyers(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path, generate(50, repeat=False))
    r = predict(cli, w)
    assert r.exit_code == 3
    assert "no repeat purchases" in r.stderr.splitlines()[0]
    assert w.query("SELECT count(*) FROM prediction_runs") == [(0,)]


def test_too_few_customers(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path, generate(6))
    r = predict(cli, w)
    assert r.exit_code == 3
    assert "too little data to fit BG/NBD" in r.stderr


# --- segments ---------------------------------------------------------------------------------

SEGMENTS = {
    "segments": {
        "fading": {"where": {"p_alive": {"lt": 0.3}}},
        "valuable": {"where": {"clv": {"gte": 150}}},
        "valuable_alive": {
            "where": {"all": [{"segment": "valuable"}, {"not": {"p_alive": {"lt": 0.5}}}]}
        },
    }
}


def test_segment_predicates_read_the_latest_run(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)
    w.write_segments(SEGMENTS)
    r = cli(w.root, "segments", "compute", "--as-of", AS_OF_ARG)
    assert r.exit_code == 3
    assert r.stderr.splitlines()[0] == (
        "mcrm: error: no CLV predictions yet: run `mcrm predict clv`"
    )
    r = cli(w.root, "segments", "validate")
    assert r.exit_code == 0, r.stderr
    assert "no CLV predictions yet" in r.stderr and "warning:" in r.stderr

    r = predict(cli, w, "--format", "json")
    assert r.exit_code == 0, r.stderr
    pred = {o["user_id"]: o for o in json.loads(r.stdout)}
    res, members = w.compute_members(["fading", "valuable", "valuable_alive"], AS_OF)
    assert members["fading"] == {u for u, o in pred.items() if o["p_alive"] < 0.3}
    assert members["valuable"] == {u for u, o in pred.items() if Decimal(o["clv"]) >= 150}
    assert members["valuable_alive"] == {
        u for u, o in pred.items() if Decimal(o["clv"]) >= 150 and not o["p_alive"] < 0.5
    }
    assert members["fading"] and members["valuable"]  # the test means something

    # a later run (another horizon) is the one read from then on
    r = predict(cli, w, "--horizon", "30d", "--format", "json")
    later = {o["user_id"]: o for o in json.loads(r.stdout)}
    _, members = w.compute_members(["valuable"], AS_OF + dt.timedelta(hours=1))
    assert members["valuable"] == {u for u, o in later.items() if Decimal(o["clv"]) >= 150}

    # evaluated before the first run: no prediction saw that time
    r = cli(w.root, "segments", "compute", "--as-of", "2026-01-01")
    assert r.exit_code == 3
    assert "no CLV predictions as of 2025-12-31T23:00Z or earlier" in r.stderr

    uid = next(iter(members["valuable"]))
    r = cli(w.root, "segments", "explain", "valuable", uid, "--as-of", AS_OF_ARG)
    assert r.exit_code == 0, r.stderr
    assert "predicted CLV at least 150" in r.stdout and "clv = " in r.stdout


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"p_alive": {"lt": 30}}, "p_alive is a probability"),
        ({"clv": {"gtx": 5}}, "unknown comparison 'gtx'"),
        ({"clv": 500}, "expected a comparison like {gte: 3}"),
    ],
)
def test_bad_predicate_shapes(
    tmp_path: Path, cli: Cli, where: dict[str, Any], message: str
) -> None:
    w = SegWS(tmp_path / "ws", timezone=ZONE)
    w.write_segments({"segments": {"s": {"where": where}}})
    r = cli(w.root, "segments", "validate")
    assert r.exit_code == 1
    assert message in r.stderr and "segments.yaml:" in r.stderr


# --- templates --------------------------------------------------------------------------------


def test_templates_see_prediction(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)
    (w.root / "campaigns" / "t").mkdir(parents=True)
    (w.root / "campaigns" / "thanks.yaml").write_text(
        "segment: everyone\nchannels: [push]\ntemplates:\n  push: { body: t/body.j2 }\n",
        encoding="utf-8",
    )
    (w.root / "campaigns" / "t" / "body.j2").write_text(
        "{% if prediction.clv is none %}{% skip 'no prediction' %}{% endif %}"
        "clv={{ prediction.clv }} alive={{ '%.4f' | format(prediction.p_alive) }} "
        "n={{ '%.4f' | format(prediction.expected_purchases) }} aov={{ prediction.expected_aov }}"
        " as_of={{ prediction.as_of.isoformat() }}",
        encoding="utf-8",
    )
    w.write_segments({"segments": {"everyone": {"where": {"purchase": {}}}}})
    r = cli(w.root, "campaigns", "validate")
    assert r.exit_code == 0, r.stderr  # the specimen has a prediction
    r = cli(w.root, "campaigns", "preview", "thanks", "--user", "c001", "--as-of", AS_OF_ARG)
    assert r.exit_code == 3
    assert "no CLV predictions yet: run `mcrm predict clv`" in r.stderr

    r = predict(cli, w, "--format", "json")
    pred = {o["user_id"]: o for o in json.loads(r.stdout)}
    uid = sorted(pred)[1]
    r = cli(
        w.root,
        "campaigns",
        "preview",
        "thanks",
        "--user",
        uid,
        "--as-of",
        AS_OF_ARG,
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)[0]["parts"]["body"]
    o = pred[uid]
    assert f"clv={o['clv']} " in body
    assert f"alive={o['p_alive']:.4f} " in body
    assert f"n={o['expected_purchases']:.4f} " in body
    assert f"aov={o['expected_aov']} " in body
    assert "as_of=2026-06-30T14:00:00+02:00" in body  # the run's as-of, in the user's zone


# --- storage ----------------------------------------------------------------------------------


def test_a_version_5_database_upgrades_to_hold_predictions(tmp_path: Path, cli: Cli) -> None:
    from mcrm.db import connect

    w, _ = loaded(tmp_path)
    con = connect(str(w.ws.db_path))
    try:  # back to what schema version 5 had
        con.execute("DROP TABLE predictions")
        con.execute("DROP TABLE prediction_runs")
        con.execute("DROP SEQUENCE prediction_run_seq")
        con.execute("UPDATE mcrm_meta SET value = '5' WHERE key = 'schema_version'")
    finally:
        con.close()
    r = cli(w.root, "db", "upgrade")
    assert r.exit_code == 0, r.stderr
    assert "schema version 5 -> 6" in r.stderr
    r = predict(cli, w, "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert w.query("SELECT count(*) FROM prediction_runs") == [(1,)]


def test_forget_erases_a_persons_predictions(tmp_path: Path, cli: Cli) -> None:
    w, _ = loaded(tmp_path)
    assert predict(cli, w, "--format", "json").exit_code == 0
    assert w.query("SELECT count(*) FROM predictions WHERE user_id = 'c001'") == [(1,)]
    r = cli(w.root, "users", "forget", "c001", "--yes")
    assert r.exit_code == 0, r.stderr
    assert w.query("SELECT count(*) FROM predictions WHERE user_id = 'c001'") == [(0,)]
