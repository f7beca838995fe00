"""Vendor presets: each fixture export imports into the canonical tables, idempotently, with
corrupted rows rejected at their line while good rows import.

Expectations are derived from the fixture files themselves (tests/fixtures/vendors/, described
in docs/vendor-formats.md); only the country-name table below is written out by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mcrm import api
from mcrm.config import Workspace, open_workspace
from mcrm.db import connect
from mcrm.ingest.run import ImportResult

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "vendors"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # after the fixtures' last day
COUNTRY = {
    "Czechia": "CZ",
    "Bulgaria": "BG",
    "China": "CN",
    "Italy": "IT",
    "Russia": "RU",
    "United Kingdom": "GB",
}
AMPLITUDE = FIX / "amplitude_events.jsonl"
MIXPANEL = FIX / "mixpanel_events.jsonl"
FIREBASE = FIX / "firebase_events.jsonl"
AF_INSTALLS = FIX / "appsflyer_installs.csv"
AF_INAPP = FIX / "appsflyer_inapp.csv"
SHOPIFY = FIX / "shopify_orders.csv"


# ---------------------------------------------------------------------------------------------
# helpers


def _new_ws(root: Path) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mcrm.yaml").write_text("timezone: UTC\nbase_currency: EUR\n", encoding="utf-8")
    return open_workspace(str(root), {}, root)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return _new_ws(tmp_path / "ws")


def run(ws: Workspace, kind: str, path: Path, preset: str | None) -> ImportResult:
    result = api.import_files(ws, kind, [str(path)], preset=preset, now=NOW, cwd=ws.root)
    for f in result.files:
        accounted = f.inserted + f.updated + f.duplicates + f.rejected + f.forgotten
        assert f.rows_read == accounted, f
    return result


def q(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = connect(str(ws.db_path), read_only=True)
    try:
        rows = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
        return list(rows)
    finally:
        con.close()


def by_kind(result: ImportResult) -> dict[str, Any]:
    return {f.kind: f for f in result.files}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def utc(text: str) -> dt.datetime:
    """A vendor's naive UTC time as the naive UTC datetime mcrm stores."""
    return dt.datetime.fromisoformat(text)


def from_epoch(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)


def fx_rates(ws: Workspace, currencies: list[str]) -> None:
    """A daily rate for every currency over the fixtures' period."""
    lines = ["date,currency,rate"]
    day = dt.date(2026, 8, 25)
    while day <= dt.date(2026, 11, 30):
        lines += [f"{day},{c},0.5" for c in currencies]
        day += dt.timedelta(days=1)
    path = ws.root / "fx.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run(ws, "fx-rates", path, None)


def rejects(ws: Workspace, import_id: int) -> list[tuple[int | None, str]]:
    return [
        (r[0], r[1])
        for r in q(
            ws,
            "SELECT line, reason FROM import_rejects WHERE import_id = ? ORDER BY line",
            [import_id],
        )
    ]


def shopify_orders() -> dict[str, dict[str, Any]]:
    """Orders of the Shopify fixture: first row's fields, and the line items."""
    orders: dict[str, dict[str, Any]] = {}
    for row in csv_rows(SHOPIFY):
        o = orders.setdefault(row["Name"], {"first": row, "items": []})
        o["items"].append(row)
    return orders


# ---------------------------------------------------------------------------------------------
# Amplitude


def test_amplitude_events_users_and_devices(ws: Workspace) -> None:
    rows = jsonl(AMPLITUDE)
    parts = by_kind(run(ws, "events", AMPLITUDE, "amplitude"))
    assert parts["events"].rows_read == len(rows)
    assert parts["events"].inserted == len(rows) and parts["events"].rejected == 0
    user_ids = {r["user_id"] for r in rows if r["user_id"]}
    assert parts["users"].rows_read == len(user_ids)
    assert q(ws, "SELECT count(*) FROM users")[0][0] == len(user_ids)

    # every event: UTC time, ISO country, dedupe id
    got = {
        r[0]: r[1:]
        for r in q(ws, "SELECT event_id, ts, country, user_id, anonymous_id FROM events")
    }
    for r in rows:
        ts, country, user_id, anon = got[r["$insert_id"]]
        assert ts == utc(r["event_time"])
        assert country == COUNTRY[r["country"]]
        assert anon == r["device_id"]
        if r["user_id"]:
            assert user_id == r["user_id"]

    # the purchase: revenue and currency from event_properties, properties kept
    buy = next(r for r in rows if r["event_properties"].get("order_id") == "#1041")
    ev = q(
        ws,
        "SELECT name, revenue, currency, properties->>'order_id', screen FROM events "
        "WHERE event_id = ?",
        [buy["$insert_id"]],
    )[0]
    props = buy["event_properties"]
    assert ev[:4] == (
        buy["event_type"],
        Decimal(str(props["$revenue"])),
        props["$currency"],
        "#1041",
    )

    # a pre-login install (no user_id) belongs to the user who later logged in on the device
    install = next(r for r in rows if r["user_id"] is None)
    owner = next(
        r["user_id"] for r in rows if r["user_id"] and r["device_id"] == install["device_id"]
    )
    name, user, vendor = q(
        ws,
        "SELECT name, user_id, properties->>'vendor_event' FROM events WHERE event_id = ?",
        [install["$insert_id"]],
    )[0]
    assert (name, user, vendor) == ("install", owner, install["event_type"])

    # a screen view takes its screen from the autocapture property
    sv = next(r for r in rows if "[Amplitude] Screen Name" in r["event_properties"])
    assert q(ws, "SELECT name, screen FROM events WHERE event_id = ?", [sv["$insert_id"]]) == [
        ("screen_view", sv["event_properties"]["[Amplitude] Screen Name"])
    ]

    # users from the latest user_properties
    latest = max((r for r in rows if r["user_id"] == owner), key=lambda r: r["event_time"])
    up = latest["user_properties"]
    user_row = q(
        ws,
        "SELECT email, first_name, last_name, gender, birth_date, locale, country, "
        "attributes->>'loyalty_tier' FROM users WHERE user_id = ?",
        [owner],
    )[0]
    assert user_row == (
        up["email"],
        up["first_name"],
        up["last_name"],
        up["gender"],
        dt.date.fromisoformat(up["birth_date"]),
        up["locale"],
        COUNTRY[latest["country"]],
        up["loyalty_tier"],
    )
    # the device, with push_enabled from the user properties
    assert q(
        ws,
        "SELECT platform, device_model, push_enabled FROM devices "
        "WHERE user_id = ? AND device_id = ?",
        [owner, latest["device_id"]],
    ) == [(latest["platform"].lower(), latest["device_model"], up["push_enabled"])]


def test_unknown_country_name_is_kept_in_properties(ws: Workspace, tmp_path: Path) -> None:
    rows = jsonl(AMPLITUDE)
    rows[1]["country"] = "Atlantis"
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    parts = by_kind(run(ws, "events", path, "amplitude"))
    assert parts["events"].rejected == 0
    assert q(
        ws,
        "SELECT country, properties->>'country_name' FROM events WHERE event_id = ?",
        [rows[1]["$insert_id"]],
    ) == [(None, "Atlantis")]


# ---------------------------------------------------------------------------------------------
# Mixpanel


def test_mixpanel_events(ws: Workspace) -> None:
    rows = jsonl(MIXPANEL)
    parts = by_kind(run(ws, "events", MIXPANEL, "mixpanel"))
    assert (parts["events"].rows_read, parts["events"].inserted) == (len(rows), len(rows))
    got = {
        r[0]: r[1:]
        for r in q(
            ws,
            "SELECT event_id, ts, user_id, anonymous_id, country, platform, revenue, currency "
            "FROM events",
        )
    }
    owners = {
        r["properties"]["$device_id"]: r["properties"]["$user_id"]
        for r in rows
        if "$user_id" in r["properties"]
    }
    assert any(r["properties"]["$device_id"] not in owners for r in rows)
    for r in rows:
        p = r["properties"]
        ts, user_id, anon, country, platform, revenue, currency = got[p["$insert_id"]]
        assert ts == from_epoch(p["time"])
        # pre-login rows belong to whoever logged in on the device; web visits stay anonymous
        assert user_id == p.get("$user_id", owners.get(p["$device_id"]))
        assert anon == p["$device_id"]
        assert country == p["mp_country_code"]
        assert platform == ("web" if p["mp_lib"] == "web" else p["$os"].lower())
        if "revenue" in p:
            assert (revenue, currency) == (Decimal(str(p["revenue"])), p["currency"])
        else:
            assert revenue is None
    first_open = next(r for r in rows if r["event"] == "$ae_first_open")
    props = q(
        ws,
        "SELECT name, properties FROM events WHERE event_id = ?",
        [first_open["properties"]["$insert_id"]],
    )[0]
    assert props[0] == "install"
    kept = json.loads(props[1])
    assert kept["vendor_event"] == "$ae_first_open"
    assert "time" not in kept and "distinct_id" not in kept  # mapped, not repeated


# ---------------------------------------------------------------------------------------------
# Firebase


def _firebase_param(row: dict[str, Any], key: str) -> Any:
    for p in row["event_params"]:
        if p["key"] == key:
            return next(iter(p["value"].values()))
    return None


def test_firebase_events_and_users(ws: Workspace) -> None:
    rows = jsonl(FIREBASE)
    parts = by_kind(run(ws, "events", FIREBASE, "firebase"))
    assert (parts["events"].rows_read, parts["events"].inserted) == (len(rows), len(rows))
    assert parts["users"].rows_read == len({r["user_id"] for r in rows if r.get("user_id")})

    buy = next(r for r in rows if r["event_name"] == "purchase")
    ts = from_epoch(int(buy["event_timestamp"]) / 1e6)
    got = q(
        ws,
        "SELECT user_id, revenue, currency, country, os_version, screen, session_id, "
        "CAST(properties->'ga_session_id' AS BIGINT), json_array_length(properties->'items'), "
        "properties->>'transaction_id' FROM events WHERE name = 'purchase' AND ts = ?",
        [ts],
    )
    assert got == [
        (
            buy["user_id"],
            Decimal(str(_firebase_param(buy, "value"))),
            _firebase_param(buy, "currency"),
            COUNTRY[buy["geo"]["country"]],
            buy["device"]["operating_system_version"].split(" ", 1)[1],
            _firebase_param(buy, "firebase_screen"),
            f"{buy['user_pseudo_id']}:{_firebase_param(buy, 'ga_session_id')}",
            int(_firebase_param(buy, "ga_session_id")),
            len(buy["items"]),
            _firebase_param(buy, "transaction_id"),
        )
    ]
    # automatic names become canonical; a view_item carries no revenue
    names = {r[0] for r in q(ws, "SELECT name FROM events")}
    assert "install" in names and "first_open" not in names and "push_open" in names
    assert q(ws, "SELECT revenue FROM events WHERE name = 'product_view'")[0] == (None,)
    # the user: locale from device.language, acquisition from traffic_source
    last = max((r for r in rows if r.get("user_id")), key=lambda r: int(r["event_timestamp"]))
    lang, region = last["device"]["language"].split("-")
    assert q(
        ws,
        "SELECT locale, acq_source, acq_campaign FROM users WHERE user_id = ?",
        [last["user_id"]],
    ) == [
        (
            f"{lang}-{region.upper()}",
            last["traffic_source"]["source"],
            last["traffic_source"]["name"],
        )
    ]


def test_firebase_parquet_matches_json_lines(ws: Workspace, tmp_path: Path) -> None:
    import duckdb

    pq = tmp_path / "firebase.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_json('{FIREBASE}', format='newline_delimited')) "
        f"TO '{pq}' (FORMAT parquet)"
    )
    con.close()
    run(ws, "events", FIREBASE, "firebase")
    other = _new_ws(tmp_path / "other")
    parts = by_kind(run(other, "events", pq, "firebase"))
    assert parts["events"].inserted == len(jsonl(FIREBASE))
    sql = (
        "SELECT name, user_id, anonymous_id, ts, session_id, country, screen, revenue, "
        "currency, CAST(properties->'ga_session_id' AS BIGINT) FROM events ORDER BY ts, name"
    )
    assert q(other, sql) == q(ws, sql)


# ---------------------------------------------------------------------------------------------
# AppsFlyer


def test_appsflyer_installs_then_in_app(ws: Workspace) -> None:
    installs, inapp = csv_rows(AF_INSTALLS), csv_rows(AF_INAPP)
    first = by_kind(run(ws, "events", AF_INSTALLS, "appsflyer"))
    assert first["events"].inserted == len(installs)
    second = by_kind(run(ws, "events", AF_INAPP, "appsflyer"))
    assert second["events"].inserted == len(inapp)

    # installs carry attribution as utm_*; their user comes from the in-app rows of the install
    owners = {
        r["AppsFlyer ID"]: r["Customer User ID"] for r in installs + inapp if r["Customer User ID"]
    }
    for r in installs:
        got = q(
            ws,
            "SELECT user_id, ts, utm_source, utm_campaign, country FROM events "
            "WHERE name = 'install' AND anonymous_id = ?",
            [r["AppsFlyer ID"]],
        )
        assert got == [
            (
                owners.get(r["AppsFlyer ID"]),
                utc(r["Event Time"]),
                r["Media Source"],
                r["Campaign"] or None,
                r["Country Code"],
            )
        ]
        if r["AppsFlyer ID"] in owners:
            user = q(
                ws,
                "SELECT acq_source, acq_campaign, install_time FROM users WHERE user_id = ?",
                [owners[r["AppsFlyer ID"]]],
            )
            assert user == [(r["Media Source"], r["Campaign"] or None, utc(r["Install Time"]))]

    # in-app: Event Value parsed, revenue only where Event Revenue is set
    buy = next(r for r in inapp if r["Event Revenue"])
    value = json.loads(buy["Event Value"])
    assert q(
        ws,
        "SELECT name, revenue, currency, properties->>'af_order_id' FROM events "
        "WHERE anonymous_id = ? AND ts = ?",
        [buy["AppsFlyer ID"], utc(buy["Event Time"])],
    ) == [
        (
            "purchase",
            Decimal(buy["Event Revenue"]),
            buy["Event Revenue Currency"],
            value["af_order_id"],
        )
    ]
    loc = next(r for r in inapp if "af_lat" in r["Event Value"])
    lat = json.loads(loc["Event Value"])
    assert q(
        ws,
        "SELECT latitude, longitude, revenue FROM events WHERE anonymous_id = ? AND ts = ?",
        [loc["AppsFlyer ID"], utc(loc["Event Time"])],
    ) == [(lat["af_lat"], lat["af_long"], None)]


# ---------------------------------------------------------------------------------------------
# Shopify


def test_shopify_orders_and_consents(ws: Workspace) -> None:
    orders = shopify_orders()
    currencies = sorted({o["first"]["Currency"] for o in orders.values()} - {"EUR"})
    fx_rates(ws, currencies)
    parts = by_kind(run(ws, "purchases", SHOPIFY, "shopify"))
    assert (parts["purchases"].rows_read, parts["purchases"].inserted) == (
        len(orders),
        len(orders),
    )
    with_flag = [o for o in orders.values() if o["first"]["Accepts Marketing"]]
    assert parts["consents"].inserted == len(with_flag)

    got = {
        r[0]: r[1:]
        for r in q(
            ws,
            "SELECT order_id, ts, amount, currency, status, channel, items, coupon_code "
            "FROM purchases",
        )
    }
    expect_status = {"refunded": "refunded", "voided": "cancelled"}
    for name, o in orders.items():
        f = o["first"]
        ts, amount, currency, status, channel, items, coupon = got[name]
        created = dt.datetime.strptime(f["Created at"], "%Y-%m-%d %H:%M:%S %z")
        assert ts == created.astimezone(dt.UTC).replace(tzinfo=None)
        assert (amount, currency) == (Decimal(f["Total"]), f["Currency"])
        assert status == expect_status.get(f["Financial Status"], "paid")
        assert channel == ("web" if f["Source"] == "web" else "app")
        assert coupon == (f["Discount Code"] or None)
        assert [
            (i["sku"], i["quantity"], Decimal(str(i["price"]))) for i in json.loads(items)
        ] == [
            (i["Lineitem sku"], int(i["Lineitem quantity"]), Decimal(i["Lineitem price"]))
            for i in o["items"]
        ]
    assert got["#1042"][3] == "refunded"

    # consent ledger: e-mail marketing, granted from Accepts Marketing, at Created at
    ledger = q(
        ws,
        "SELECT i.value, c.granted, c.channel, c.purpose, c.source FROM consents c "
        "JOIN identities i ON i.user_id = c.user_id AND i.kind = 'email' ORDER BY c.ts",
    )
    expect = sorted(
        (
            (
                o["first"]["Created at"],
                o["first"]["Email"],
                o["first"]["Accepts Marketing"] == "yes",
            )
            for o in with_flag
        ),
        key=lambda t: dt.datetime.strptime(t[0], "%Y-%m-%d %H:%M:%S %z"),
    )
    assert ledger == [(e, g, "email", "marketing", "shopify") for _, e, g in expect]


def test_shopify_refund_in_a_later_export_updates_the_order(ws: Workspace, tmp_path: Path) -> None:
    fx_rates(ws, ["CZK", "GBP"])
    run(ws, "purchases", SHOPIFY, "shopify")
    text = SHOPIFY.read_text(encoding="utf-8")
    first_1043 = next(line for line in text.splitlines() if line.startswith("#1043,"))
    later = text.replace(first_1043, first_1043.replace(",paid,", ",refunded,", 1))
    path = tmp_path / "later.csv"
    path.write_text(later, encoding="utf-8")
    parts = by_kind(run(ws, "purchases", path, "shopify"))
    assert (parts["purchases"].inserted, parts["purchases"].updated) == (0, 1)
    assert q(ws, "SELECT status FROM purchases WHERE order_id = '#1043'") == [("refunded",)]


# ---------------------------------------------------------------------------------------------
# Identity across vendors, idempotency


@pytest.mark.parametrize("shopify_first", [False, True])
def test_app_user_and_shop_customer_are_one_person(ws: Workspace, shopify_first: bool) -> None:
    fx_rates(ws, ["CZK", "GBP"])
    steps = [("events", AMPLITUDE, "amplitude"), ("purchases", SHOPIFY, "shopify")]
    for kind, path, preset in reversed(steps) if shopify_first else steps:
        run(ws, kind, path, preset)
    app_users = {
        r["user_properties"]["email"]: r["user_id"]
        for r in jsonl(AMPLITUDE)
        if r["user_id"] and r["user_properties"].get("email")
    }
    for name, o in shopify_orders().items():
        email = o["first"]["Email"]
        assert email in app_users  # the fixture's shoppers all use the app
        assert q(ws, "SELECT user_id FROM purchases WHERE order_id = ?", [name]) == [
            (app_users[email],)
        ]
        assert q(ws, "SELECT count(*) FROM users WHERE email = ?", [email]) == [(1,)]
        assert q(
            ws,
            "SELECT count(DISTINCT c.user_id) FROM consents c JOIN identities i "
            "ON i.user_id = c.user_id AND i.kind = 'email' AND i.value = ?",
            [email],
        ) == [(1,)]
    assert q(ws, "SELECT count(*) FROM users WHERE starts_with(user_id, 'email:')") == [(0,)]


IMPORTS = [
    ("events", AMPLITUDE, "amplitude"),
    ("events", MIXPANEL, "mixpanel"),
    ("events", FIREBASE, "firebase"),
    ("events", AF_INSTALLS, "appsflyer"),
    ("events", AF_INAPP, "appsflyer"),
    ("purchases", SHOPIFY, "shopify"),
]
TABLES = ("events", "users", "devices", "purchases", "consents", "identities")


@pytest.mark.parametrize(("kind", "path", "preset"), IMPORTS, ids=[i[1].stem for i in IMPORTS])
def test_importing_twice_adds_nothing(ws: Workspace, kind: str, path: Path, preset: str) -> None:
    fx_rates(ws, ["CZK", "GBP"])
    first = run(ws, kind, path, preset)
    assert sum(f.inserted for f in first.files) > 0
    counts = [q(ws, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES]
    again = run(ws, kind, path, preset)
    assert [f.inserted for f in again.files] == [0] * len(again.files)
    assert [f.rejected for f in again.files] == [0] * len(again.files)
    assert [q(ws, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES] == counts


# ---------------------------------------------------------------------------------------------
# Corrupted copies: the bad rows are rejected at their line, the others import


def _corrupt_jsonl(path: Path, tmp_path: Path, set_time: Any) -> tuple[Path, int, int]:
    """Line 2 broken JSON, line 4 a bad time; returns (file, broken line, bad-time line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    row = json.loads(lines[3])
    set_time(row)
    lines[3] = json.dumps(row)
    out = tmp_path / path.name
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out, 2, 4


CORRUPT_JSONL = [
    ("amplitude", AMPLITUDE, lambda r: r.update(event_time="2026-13-45 25:61:00")),
    ("mixpanel", MIXPANEL, lambda r: r["properties"].update(time="yesterday")),
    ("firebase", FIREBASE, lambda r: r.update(event_timestamp="17884579x0498000")),
]


@pytest.mark.parametrize(
    ("preset", "path", "set_time"), CORRUPT_JSONL, ids=[c[0] for c in CORRUPT_JSONL]
)
def test_corrupted_json_lines(
    ws: Workspace, tmp_path: Path, preset: str, path: Path, set_time: Any
) -> None:
    bad_file, broken, bad_time = _corrupt_jsonl(path, tmp_path, set_time)
    result = run(ws, "events", bad_file, preset)
    events = by_kind(result)["events"]
    total = len(path.read_text(encoding="utf-8").splitlines())
    assert (events.rows_read, events.rejected, events.inserted) == (total, 2, total - 2)
    got = rejects(ws, result.import_id)
    assert [line for line, _ in got] == [broken, bad_time]
    assert "invalid JSON" in got[0][1]
    assert got[1][1].startswith("timestamp: cannot read")
    assert q(ws, "SELECT count(*) FROM events") == [(total - 2,)]


def _rewrite_csv(path: Path, tmp_path: Path, edit: dict[int, dict[str, str]], extra: str) -> Path:
    """The CSV with fields of some records (0-based) changed and a raw line appended."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        records = list(reader)
    for i, changes in edit.items():
        for col, value in changes.items():
            records[i][header.index(col)] = value
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(records)
    out = tmp_path / path.name
    out.write_text(buf.getvalue() + extra, encoding="utf-8")
    return out


def _physical_line(path: Path, record: int) -> int:
    """1-based line where 0-based data record `record` starts (quoted values may span lines)."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for i, line in enumerate(_iter_with_line(reader)):
            if i == record:
                return line
    raise AssertionError(record)


def _iter_with_line(reader: Any) -> Iterator[int]:
    start = reader.line_num + 1
    for _row in reader:
        yield start
        start = reader.line_num + 1


def test_corrupted_appsflyer(ws: Workspace, tmp_path: Path) -> None:
    rows = csv_rows(AF_INAPP)
    bad = _rewrite_csv(AF_INAPP, tmp_path, {2: {"Event Time": "2026-10-02 6h48"}}, "a,b,c\n")
    result = run(ws, "events", bad, "appsflyer")
    events = by_kind(result)["events"]
    assert (events.rows_read, events.rejected, events.inserted) == (
        len(rows) + 1,
        2,
        len(rows) - 1,
    )
    got = rejects(ws, result.import_id)
    assert [line for line, _ in got] == [_physical_line(bad, 2), len(rows) + 2]
    assert got[0][1].startswith("timestamp: cannot read '2026-10-02 6h48'")
    assert "too few columns" in got[1][1]


def test_corrupted_shopify(ws: Workspace, tmp_path: Path) -> None:
    fx_rates(ws, ["CZK", "GBP"])
    orders = shopify_orders()
    names = [r["Name"] for r in csv_rows(SHOPIFY)]
    i_1043 = names.index("#1043")  # its first row holds the order's fields
    i_1044_item = len(names) - 1 - names[::-1].index("#1044")  # a line-item row
    bad = _rewrite_csv(
        SHOPIFY,
        tmp_path,
        {i_1043: {"Created at": "yesterday"}, i_1044_item: {"Lineitem price": "24,00"}},
        "",
    )
    result = run(ws, "purchases", bad, "shopify")
    purchases = by_kind(result)["purchases"]
    assert (purchases.rows_read, purchases.rejected, purchases.inserted) == (
        len(orders),
        2,
        len(orders) - 2,
    )
    got = rejects(ws, result.import_id)
    assert [line for line, _ in got] == [
        _physical_line(bad, i_1043),
        _physical_line(bad, i_1044_item),
    ]
    assert got[0][1].startswith("timestamp: cannot read 'yesterday'")
    assert "24,00" in got[1][1]
    ok = {r[0] for r in q(ws, "SELECT order_id FROM purchases")}
    assert ok == set(orders) - {"#1043", "#1044"}


def test_wrong_file_for_preset_names_the_missing_columns(ws: Workspace) -> None:
    from mcrm.errors import DataError

    with pytest.raises(DataError, match="'Event Name'.*found: Name, Email"):
        run(ws, "events", SHOPIFY, "appsflyer")


@pytest.mark.parametrize(
    ("path", "preset"), [(AMPLITUDE, "amplitude"), (AF_INAPP, "appsflyer")], ids=["amp", "af"]
)
def test_vendor_utc_times_ignore_the_workspace_zone(
    tmp_path: Path, path: Path, preset: str
) -> None:
    """Amplitude and AppsFlyer write UTC without an offset: a workspace in Prague must not
    shift them (naive times are otherwise read in the workspace zone)."""
    utc_ws = _new_ws(tmp_path / "utc")
    prague = _new_ws(tmp_path / "prague")
    (prague.root / "mcrm.yaml").write_text("timezone: Europe/Prague\nbase_currency: EUR\n")
    prague = open_workspace(str(prague.root), {}, prague.root)
    run(utc_ws, "events", path, preset)
    run(prague, "events", path, preset)
    sql = "SELECT name, anonymous_id, ts FROM events ORDER BY ts, anonymous_id, name"
    assert q(prague, sql) == q(utc_ws, sql)
    if preset == "amplitude":
        first = jsonl(path)[0]
        assert q(utc_ws, sql)[0][2] == utc(first["event_time"])


# ---------------------------------------------------------------------------------------------
# OS spellings


def test_os_is_stored_in_one_spelling_whatever_the_vendor(ws: Workspace, tmp_path: Path) -> None:
    """Amplitude writes `ios`, Firebase `iOS`, Mixpanel `iOS` / `Mac OS X`, users and devices
    files whatever their app logged: stored lower-cased and trimmed everywhere, so `--by os`
    has one `ios` group and an exact `u.os = 'ios'` (the SQL escape hatch) finds them all."""
    run(ws, "events", AMPLITUDE, "amplitude")
    run(ws, "events", FIREBASE, "firebase")
    run(ws, "events", MIXPANEL, "mixpanel")
    plain = tmp_path / "events.csv"
    plain.write_text(
        "event_id,user_id,name,timestamp,os\n"
        "pe-1,ev-4,session_start,2026-01-02T10:00:00Z, iPadOS\n"
        "pe-2,ev-5,session_start,2026-01-02T10:00:00Z,Android \n",
        encoding="utf-8",
    )
    run(ws, "events", plain, None)
    assert q(ws, "SELECT os FROM events WHERE event_id LIKE 'pe-%' ORDER BY event_id") == [
        ("ios",),
        ("android",),
    ]
    # the user's os is their latest event's, in the same spelling
    assert q(ws, "SELECT os FROM users WHERE user_id IN ('ev-4', 'ev-5') ORDER BY 1") == [
        ("android",),
        ("ios",),
    ]
    users = tmp_path / "users.csv"
    users.write_text("user_id,os\nos-1, IOS \nos-2,Android\nos-3,\n", encoding="utf-8")
    run(ws, "users", users, None)
    devices = tmp_path / "devices.csv"
    devices.write_text("user_id,device_id,os\nos-1,dv-1,iPhone OS\nos-2,dv-2,ANDROID\n")
    run(ws, "devices", devices, None)
    for table in ("events", "users", "devices"):
        seen = {r[0] for r in q(ws, f"SELECT DISTINCT os FROM {table} WHERE os IS NOT NULL")}
        assert seen, table
        assert all(v == v.strip().lower() for v in seen), (table, seen)
    assert {r[0] for r in q(ws, "SELECT DISTINCT os FROM events")} == {
        "android",
        "ios",
        "mac os x",
    }
    assert q(ws, "SELECT os FROM users WHERE user_id LIKE 'os-%' ORDER BY user_id") == [
        ("ios",),
        ("android",),
        (None,),
    ]
    # Apple's old name for iOS (some SDKs still send it) is iOS
    assert q(ws, "SELECT device_id, os FROM devices WHERE user_id LIKE 'os-%' ORDER BY 1") == [
        ("dv-1", "ios"),
        ("dv-2", "android"),
    ]
