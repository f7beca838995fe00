"""Geo (analytics reference §16): the haversine SQL against a Python reference, the
bounding-box prefilter never dropping a point inside the radius (hypothesis, poles and the
antimeridian included), and the `near` / `visited` predicates."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcrm.segments.compile import bbox, haversine
from mcrm.segments.model import Place
from tests.segdata import SegWS

R_KM = 6371.0088  # IUGG mean Earth radius, written here independently of mcrm


def ref_haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_KM * math.asin(min(1.0, math.sqrt(h)))


def destination(lat: float, lon: float, bearing: float, dist_km: float) -> tuple[float, float]:
    """The point `dist_km` away from (lat, lon) on a great circle (lon in [-180, 180))."""
    d = dist_km / R_KM
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 180) % 360 - 180
    return math.degrees(p2), lon2


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def sql_distance(c: duckdb.DuckDBPyConnection, place: Place, lat: float, lon: float) -> float:
    row = c.execute(
        f"SELECT {haversine('lat', 'lon', place)} FROM (SELECT ?::DOUBLE AS lat, "
        "?::DOUBLE AS lon) t",
        [lat, lon],
    ).fetchall()
    return float(row[0][0])


def test_berlin_to_paris(con: duckdb.DuckDBPyConnection) -> None:
    berlin = Place("berlin", 52.52, 13.405, 1)
    d = sql_distance(con, berlin, 48.8566, 2.3522)
    assert round(d, 2) == 877.46
    assert d == pytest.approx(ref_haversine(52.52, 13.405, 48.8566, 2.3522), abs=1e-6)


def test_haversine_sql_matches_reference(con: duckdb.DuckDBPyConnection) -> None:
    import random

    rng = random.Random(16)
    pairs = [(0.0, 0.0, 0.0, 180.0), (89.9, 10.0, -89.9, -170.0), (50.0, 179.9, 50.0, -179.9)]
    for _ in range(300):
        pairs.append(
            (
                rng.uniform(-90, 90),
                rng.uniform(-180, 180),
                rng.uniform(-90, 90),
                rng.uniform(-180, 180),
            )
        )
    for lat0, lon0, lat, lon in pairs:
        got = sql_distance(con, Place("p", lat0, lon0, 1), lat, lon)
        assert got == pytest.approx(ref_haversine(lat0, lon0, lat, lon), abs=1e-6)


def test_prague_store_box_matches_the_reference_example() -> None:
    prague = Place("prague_store", 50.0875, 14.4213, 2)
    cond = bbox("lat", "lon", prague, 2)
    lat_lo, lat_hi, lon_lo, lon_hi = (float(x) for x in _numbers(cond))
    assert (lat_hi - lat_lo) / 2 == pytest.approx(0.017986, abs=1e-6)
    assert (lon_hi - lon_lo) / 2 == pytest.approx(0.028033, abs=1e-6)


def _numbers(cond: str) -> list[str]:
    import re

    return re.findall(r"-?\d+\.\d+(?:e-?\d+)?", cond)


centers = st.tuples(
    st.one_of(
        st.floats(-89.99, 89.99),
        st.floats(80, 89.99),  # near the north pole
        st.floats(-89.99, -80),  # near the south pole
    ),
    st.one_of(
        st.floats(-180, 180),
        st.floats(170, 180),  # near the antimeridian
        st.floats(-180, -170),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    center=centers,
    radius=st.one_of(st.floats(0.01, 50), st.floats(50, 3000)),
    points=st.lists(
        st.tuples(st.floats(0, 360), st.floats(0.9, 1.0000001)), min_size=1, max_size=24
    ),
)
def test_bbox_never_drops_a_point_inside_the_radius(
    con: duckdb.DuckDBPyConnection,
    center: tuple[float, float],
    radius: float,
    points: list[tuple[float, float]],
) -> None:
    lat0, lon0 = center
    place = Place("p", lat0, lon0, radius)
    candidates = [destination(lat0, lon0, b, radius * f) for b, f in points]
    # the exact extremes of the circle too: due north/south/east/west and the widest longitude
    candidates += [destination(lat0, lon0, b, radius) for b in (0, 90, 180, 270)]
    delta = radius / R_KM
    p0 = math.radians(lat0)
    if math.sin(delta) < math.cos(p0):  # the tangent points of the widest longitude
        lat_t = math.degrees(math.asin(math.sin(p0) / math.cos(delta)))
        dlon = math.degrees(math.asin(math.sin(delta) / math.cos(p0)))
        for sign in (1, -1):
            candidates.append((lat_t, (lon0 + sign * dlon + 180) % 360 - 180))
    values = ", ".join(
        f"({i}, CAST({lat!r} AS DOUBLE), CAST({lon!r} AS DOUBLE))"
        for i, (lat, lon) in enumerate(candidates)
    )
    rows = con.execute(
        f"SELECT i, lat, lon, {haversine('lat', 'lon', place)} AS d, "
        f"coalesce({bbox('lat', 'lon', place, radius)}, FALSE) AS inbox "
        f"FROM (VALUES {values}) t(i, lat, lon)"
    ).fetchall()
    for _i, lat, lon, d, inbox in rows:
        assert d == pytest.approx(ref_haversine(lat0, lon0, lat, lon), abs=1e-6)
        if d <= radius:
            assert inbox, f"bbox dropped ({lat}, {lon}) at {d} km <= {radius} km"


# ---------------------------------------------------------------------------------------------
# near and visited

D = dt.datetime(2025, 6, 15, 12, 0)
PLACES = {
    "prague_store": {"lat": 50.0875, "lon": 14.4213, "radius_km": 2},
    "null_island": {"lat": 0.0, "lon": 0.0, "radius_km": 50},
    "fiji": {"lat": -17.8, "lon": 179.9, "radius_km": 30},
}


@pytest.fixture(scope="module")
def geo_ws(tmp_path_factory: pytest.TempPathFactory) -> SegWS:
    w = SegWS(tmp_path_factory.mktemp("geo"), "Asia/Tokyo")
    p = PLACES["prague_store"]
    lat0, lon0 = float(p["lat"]), float(p["lon"])
    home = {
        "h_1_9km": destination(lat0, lon0, 45, 1.9),
        "h_2_1km": destination(lat0, lon0, 45, 2.1),
        "h_5km": destination(lat0, lon0, 200, 5),
        "h_zero": (0.0, 0.0),
        "h_near_zero": (0.01, 0.01),
        "h_fiji_east": destination(-17.8, 179.9, 90, 25),  # across the antimeridian
        "h_none": (None, None),
    }
    w.load(
        "users",
        [
            {"user_id": u, "home_lat": la, "home_lon": lo, "first_seen": dt.datetime(2024, 1, 1)}
            for u, (la, lo) in home.items()
        ],
    )
    inside = destination(lat0, lon0, 90, 1.0)
    outside = destination(lat0, lon0, 90, 2.5)

    def ev(uid: str, t: dt.datetime, at: tuple[float, float]) -> dict[str, object]:
        return {
            "user_id": uid,
            "name": "location",
            "timestamp": t,
            "latitude": at[0],
            "longitude": at[1],
        }

    day = dt.datetime(2025, 6, 10)
    events = [
        # three visits on three Tokyo days
        ev("v_three_days", day.replace(hour=1), inside),
        ev("v_three_days", day.replace(hour=2) + dt.timedelta(days=1), inside),
        ev("v_three_days", day.replace(hour=3) + dt.timedelta(days=2), inside),
        # three visits in one Tokyo day (14:00, 16:00, 20:00 UTC on Jun 10 = Jun 10 23:00 ..
        # Jun 11 05:00 Tokyo): two Tokyo days, though one UTC day
        ev("v_one_utc_day", day.replace(hour=14), inside),
        ev("v_one_utc_day", day.replace(hour=16), inside),
        ev("v_one_utc_day", day.replace(hour=20), inside),
        # three visits on one Tokyo day (all between 00:00 and 10:00 UTC = 09:00..19:00 Tokyo)
        ev("v_same_day", day.replace(hour=0), inside),
        ev("v_same_day", day.replace(hour=5), inside),
        ev("v_same_day", day.replace(hour=9), inside),
        # three days but outside the radius
        ev("v_outside", day.replace(hour=1), outside),
        ev("v_outside", day.replace(hour=1) + dt.timedelta(days=1), outside),
        ev("v_outside", day.replace(hour=1) + dt.timedelta(days=2), outside),
        # three days, but one visit is older than the window
        ev("v_old", day.replace(hour=1) - dt.timedelta(days=30), inside),
        ev("v_old", day.replace(hour=1), inside),
        ev("v_old", day.replace(hour=1) + dt.timedelta(days=1), inside),
        # (0, 0) is unknown location, never null island
        ev("v_zero", day, (0.0, 0.0)),
        ev("v_null_island", day, (0.1, -0.1)),
    ]
    w.load("events", events)
    return w


def test_near_uses_the_place_radius_and_skips_missing(geo_ws: SegWS) -> None:
    top = {"places": PLACES}
    assert geo_ws.segment({"near": "prague_store"}, D, top) == {"h_1_9km"}
    assert geo_ws.segment({"near": "prague_store", "radius_km": 6}, D, top) == {
        "h_1_9km",
        "h_2_1km",
        "h_5km",
    }
    assert geo_ws.segment({"near": "null_island"}, D, top) == {"h_near_zero"}
    assert geo_ws.segment({"near": "fiji"}, D, top) == {"h_fiji_east"}
    # not near: users with unknown homes are included (NULL-safe)
    far = geo_ws.segment({"not": {"near": "prague_store"}}, D, top)
    assert "h_none" in far and "h_zero" in far and "h_1_9km" not in far


def test_visited_counts_distinct_local_days(geo_ws: SegWS) -> None:
    top = {"places": PLACES}
    got = geo_ws.segment({"visited": "prague_store", "within": "14d", "min_count": 3}, D, top)
    assert got == {"v_three_days"}
    got = geo_ws.segment({"visited": "prague_store", "within": "14d", "min_count": 2}, D, top)
    assert got == {"v_three_days", "v_one_utc_day", "v_old"}
    got = geo_ws.segment({"visited": "prague_store", "within": "60d", "min_count": 3}, D, top)
    assert got == {"v_three_days", "v_old"}
    got = geo_ws.segment({"visited": "prague_store", "within": "14d"}, D, top)
    assert got == {"v_three_days", "v_one_utc_day", "v_same_day", "v_old"}
    got = geo_ws.segment({"visited": "prague_store", "within": "14d", "radius_km": 3}, D, top)
    assert "v_outside" in got


def test_visited_never_matches_zero_zero(geo_ws: SegWS) -> None:
    got = geo_ws.segment({"visited": "null_island", "within": "30d"}, D, {"places": PLACES})
    assert got == {"v_null_island"}


def test_visited_sees_nothing_after_as_of(geo_ws: SegWS) -> None:
    got = geo_ws.segment(
        {"visited": "prague_store", "within": "14d"},
        dt.datetime(2025, 6, 10, 0, 30),
        {"places": PLACES},
    )
    assert got == {"v_same_day"}
