"""Sample data and the one-command quick start.

- `generate_sample` writes the realistic sample workspace data (`data/` in the repo): vendor
  exports (Amplitude, AppsFlyer, Firebase, Shopify) plus canonical CSVs for the kinds no
  vendor supplies. Deterministic: the same seed gives byte-identical files.
- `generate_scale` writes big canonical CSVs for benchmarks, generated inside DuckDB.
- `run` is `mcrm demo`: generate if needed, import everything, backfill the weeks since the
  team moved to mcrm (`backfill`), show stats and one profile, and write the HTML report
  (`.mcrm/report.html`).

The sample's story: the team moved to mcrm `demo_messages.MOVE_WEEKS` (4) weeks before the end
of the data. The e-mail history in `data/` (`mcrm.demo_messages`) is what its previous tool
sent before the move; from the move on, `mcrm demo` sends the campaigns whose effect the team
measures (a goal and a holdout: the weekly win-back) with mcrm itself, occurrence by
occurrence, as cron's `mcrm run` would have: each one planned as of its first
send time with the data of that moment (holdout rows, coupons), sent through the workspace's
file outbox at each user's send time (outbox rows, `sent` message events), recorded in
`campaign_runs`, with a segment snapshot at each weekly instant.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import random
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from mcrm.config import Workspace

SCALE_END = "2026-11-15 00:00:00"

# Pseudo-random numbers from a row number and a salt, stable across DuckDB versions
# (plain integer arithmetic; every intermediate product stays below 2**63).
_SCALE_MACROS = """
CREATE OR REPLACE TEMP MACRO _mix(x) AS
    xor((xor(x, x >> 13) * 1274126177) % 4294967296,
        ((xor(x, x >> 13) * 1274126177) % 4294967296) >> 16);
CREATE OR REPLACE TEMP MACRO hh(i, s) AS
    _mix((((i + s * 7919) * 2654435761) + s * 40503) % 4294967296);
CREATE OR REPLACE TEMP MACRO u01(i, s) AS hh(i, s) / 4294967296.0;
CREATE OR REPLACE TEMP MACRO pick(i, s, n) AS hh(i, s) % n;
"""

_SCALE_COUNTRIES = (
    ("CZ", "Prague", "cs", "Europe/Prague", 50.0755, 14.4378),
    ("CZ", "Brno", "cs", "Europe/Prague", 49.1951, 16.6068),
    ("BG", "Sofia", "bg", "Europe/Sofia", 42.6977, 23.3219),
    ("CN", "Shanghai", "zh-Hans", "Asia/Shanghai", 31.2304, 121.4737),
    ("IT", "Milan", "it", "Europe/Rome", 45.4642, 9.19),
    ("IT", "Rome", "it", "Europe/Rome", 41.9028, 12.4964),
    ("RU", "Moscow", "ru", "Europe/Moscow", 55.7558, 37.6173),
    ("GB", "London", "en", "Europe/London", 51.5074, -0.1278),
)


def _sql_list(values: list[str] | list[float]) -> str:
    return "[" + ", ".join(repr(v) if isinstance(v, str) else repr(v) for v in values) + "]"


def generate_scale(
    out: Path, users: int, events: int, purchases: int, seed: int = 7
) -> dict[str, Path]:
    """Write canonical `users.csv`, `events.csv` and `purchases.csv` into `out` for benchmarks.

    Generated inside DuckDB (`COPY (SELECT ... FROM range(n))`): 1M users / 20M events / 2M
    purchases take a couple of minutes on two cores. Timestamps are naive
    'YYYY-MM-DD HH:MM:SS' within the year before 2026-11-15; event activity is skewed (a few
    users have many events). Same arguments, same bytes.
    """
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "users": out / "users.csv",
        "events": out / "events.csv",
        "purchases": out / "purchases.csv",
    }
    n_users = max(1, int(users))
    s = int(seed) * 101
    countries = _sql_list([c[0] for c in _SCALE_COUNTRIES])
    cities = _sql_list([c[1] for c in _SCALE_COUNTRIES])
    locales = _sql_list([c[2] for c in _SCALE_COUNTRIES])
    zones = _sql_list([c[3] for c in _SCALE_COUNTRIES])
    lats = _sql_list([c[4] for c in _SCALE_COUNTRIES])
    lons = _sql_list([c[5] for c in _SCALE_COUNTRIES])
    nc = len(_SCALE_COUNTRIES)
    end = f"TIMESTAMP '{SCALE_END}'"
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        con.execute(_SCALE_MACROS)
        # user number k (1-based) -> country slot, platform, ...
        con.execute(
            f"""CREATE TEMP MACRO ucountry(k) AS pick(k, {s} + 1, {nc}) + 1;
            CREATE TEMP MACRO skew(u) AS 1 + ((least({n_users} - 1,
                CAST(floor({n_users} * u * u) AS BIGINT)) * 2147483647) % {n_users});
            CREATE TEMP MACRO uplatform(k) AS
                ['ios', 'android', 'android', 'web'][pick(k, {s} + 2, 4) + 1];"""
        )
        con.execute(
            f"""COPY (
            SELECT 'u' || k AS user_id,
                'user' || k || '@example.com' AS email,
                '+4207' || lpad(CAST(hh(k, {s} + 3) % 100000000 AS VARCHAR), 8, '0') AS phone,
                ['Anna', 'Petr', 'Ivan', 'Maria', 'Luca', 'Wei', 'Olga', 'James'][
                    pick(k, {s} + 4, 8) + 1] AS first_name,
                ['Novak', 'Petrov', 'Rossi', 'Wang', 'Ivanova', 'Smith', 'Dvorak', 'Bianchi'][
                    pick(k, {s} + 5, 8) + 1] AS last_name,
                ['female', 'male', 'female', 'male', 'other'][pick(k, {s} + 6, 5) + 1]
                    AS gender,
                strftime(DATE '1951-01-01' + CAST(pick(k, {s} + 7, 21900) AS INTEGER),
                    '%Y-%m-%d') AS birth_date,
                {locales}[ucountry(k)] AS locale,
                {countries}[ucountry(k)] AS country,
                {cities}[ucountry(k)] AS city,
                round({lats}[ucountry(k)] + (u01(k, {s} + 8) - 0.5) * 0.1, 5) AS home_lat,
                round({lons}[ucountry(k)] + (u01(k, {s} + 9) - 0.5) * 0.1, 5) AS home_lon,
                {zones}[ucountry(k)] AS timezone,
                CASE uplatform(k) WHEN 'ios' THEN 'iOS' WHEN 'android' THEN 'Android'
                    ELSE 'Web' END AS os,
                ['Facebook Ads', 'googleadwords_int', 'tiktokglobal_int', 'Organic',
                    'Organic'][pick(k, {s} + 10, 5) + 1] AS acq_source,
                strftime({end} - to_seconds(CAST(pick(k, {s} + 11, 31536000) AS BIGINT)),
                    '%Y-%m-%d %H:%M:%S') AS install_time
            FROM (SELECT range + 1 AS k FROM range({n_users}))
            ) TO '{paths["users"]}' (FORMAT csv, HEADER true)"""
        )
        # Events: the user is picked with a skew (u^2, then a fixed permutation of the user
        # numbers so heavy users are spread out): 10% of users get ~32% of the events, the
        # busiest one about 0.1%. 2% of events carry only an anonymous (device) id.
        con.execute(
            f"""COPY (
            WITH b AS (
                SELECT i, skew(u01(i, {s} + 20)) AS k,
                    pick(i, {s} + 21, 100) AS r,
                    {end} - to_seconds(CAST(pick(i, {s} + 22, 31536000) AS BIGINT)) AS t
                FROM (SELECT range AS i FROM range({int(events)}))
            ), n AS (
                SELECT *, CASE WHEN r < 15 THEN 'session_start' WHEN r < 52 THEN 'screen_view'
                    WHEN r < 72 THEN 'product_view' WHEN r < 79 THEN 'add_to_cart'
                    WHEN r < 81 THEN 'purchase' WHEN r < 84 THEN 'push_open'
                    WHEN r < 92 THEN 'location' ELSE 'search' END AS name
                FROM b
            )
            SELECT 'e' || i AS event_id,
                CASE WHEN pick(i, {s} + 23, 50) = 0 THEN NULL ELSE 'u' || k END AS user_id,
                'd' || k AS anonymous_id,
                name,
                strftime(t, '%Y-%m-%d %H:%M:%S') AS timestamp,
                's' || k || '-' || (epoch(t) // 1800)::BIGINT AS session_id,
                uplatform(k) AS platform,
                CASE uplatform(k) WHEN 'ios' THEN 'iOS' WHEN 'android' THEN 'Android'
                    ELSE 'Web' END AS os,
                CASE uplatform(k) WHEN 'ios' THEN ['17.5', '18.1', '18.2'][pick(k, {s} + 24, 3)
                    + 1] WHEN 'android' THEN ['13', '14', '15'][pick(k, {s} + 24, 3) + 1]
                    ELSE NULL END AS os_version,
                CASE WHEN uplatform(k) = 'web' THEN NULL
                    ELSE ['3.1.0', '3.2.0', '3.2.1', '3.3.0'][pick(k, {s} + 25, 4) + 1] END
                    AS app_version,
                {countries}[ucountry(k)] AS country,
                {cities}[ucountry(k)] AS city,
                CASE WHEN name = 'location' THEN round({lats}[ucountry(k)]
                    + (u01(i, {s} + 26) - 0.5) * 0.05, 5) END AS latitude,
                CASE WHEN name = 'location' THEN round({lons}[ucountry(k)]
                    + (u01(i, {s} + 27) - 0.5) * 0.05, 5) END AS longitude,
                CASE WHEN name IN ('product_view', 'add_to_cart', 'purchase')
                    THEN '{{"sku":"SKU-' || lpad(CAST(pick(i, {s} + 28, 500) AS VARCHAR), 4, '0')
                        || '","price":' || (5 + pick(i, {s} + 29, 9500) / 100.0) || '}}'
                    WHEN name = 'screen_view' THEN '{{"screen":"'
                        || ['home', 'catalog', 'product', 'cart', 'profile'][
                            pick(i, {s} + 30, 5) + 1] || '"}}'
                    WHEN name = 'push_open' THEN '{{"campaign":"weekly_'
                        || pick(i, {s} + 31, 20) || '"}}'
                    END AS properties
            FROM n
            ) TO '{paths["events"]}' (FORMAT csv, HEADER true)"""
        )
        con.execute(
            f"""COPY (
            WITH b AS (
                SELECT j, skew(u01(j, {s} + 40)) AS k,
                    1 + pick(j, {s} + 41, 3) AS qty,
                    (5 + pick(j, {s} + 42, 19500) / 100.0)::DECIMAL(10, 2) AS price,
                    pick(j, {s} + 43, 100) AS r,
                    pick(j, {s} + 44, 500) AS sku
                FROM (SELECT range AS j FROM range({int(purchases)}))
            )
            SELECT 'o' || (100000 + j) AS order_id,
                'u' || k AS user_id,
                strftime({end} - to_seconds(CAST(pick(j, {s} + 45, 31536000) AS BIGINT)),
                    '%Y-%m-%d %H:%M:%S') AS timestamp,
                CAST(qty * price AS DECIMAL(12, 2)) AS amount,
                'EUR' AS currency,
                CASE WHEN r < 92 THEN 'paid' WHEN r < 97 THEN 'refunded' ELSE 'cancelled' END
                    AS status,
                ['app', 'app', 'web', 'store'][pick(j, {s} + 46, 4) + 1] AS channel,
                '[{{"sku":"SKU-' || lpad(CAST(sku AS VARCHAR), 4, '0') || '","name":"Item '
                    || sku || '","category":"'
                    || ['shoes', 'apparel', 'electronics', 'home', 'beauty'][sku % 5 + 1]
                    || '","quantity":' || qty || ',"price":' || price || '}}]' AS items
            FROM b
            ) TO '{paths["purchases"]}' (FORMAT csv, HEADER true)"""
        )
    finally:
        con.close()
    return paths


# ------------------------------------------------------------------------------------------------
# The realistic sample (data/ in the repository)
# ------------------------------------------------------------------------------------------------

SAMPLE_FILES = (
    "fx_rates.csv",
    "users.csv",
    "devices.csv",
    "amplitude_events.jsonl.gz",
    "appsflyer_installs.csv.gz",
    "firebase_events.jsonl",
    "shopify_orders.csv.gz",
    "consents.csv",
    "ad_spend.csv",
    # the message history (mcrm.demo_messages), derived from the files above
    "sendgrid_events.jsonl.gz",
    "push_sends.csv.gz",
)

APPSFLYER_HEADER = (
    "Attributed Touch Type,Attributed Touch Time,Install Time,Event Time,Event Name,Event Value,"
    "Event Revenue,Event Revenue Currency,Event Revenue USD,Event Source,Is Receipt Validated,"
    "Partner,Media Source,Channel,Keywords,Campaign,Campaign ID,Adset,Adset ID,Ad,Ad ID,Ad Type,"
    "Site ID,Sub Site ID,Sub Param 1,Sub Param 2,Sub Param 3,Sub Param 4,Sub Param 5,Cost Model,"
    "Cost Value,Cost Currency,Contributor 1 Partner,Contributor 1 Media Source,"
    "Contributor 1 Campaign,Contributor 1 Touch Type,Contributor 1 Touch Time,"
    "Contributor 2 Partner,Contributor 2 Media Source,Contributor 2 Campaign,"
    "Contributor 2 Touch Type,Contributor 2 Touch Time,Contributor 3 Partner,"
    "Contributor 3 Media Source,Contributor 3 Campaign,Contributor 3 Touch Type,"
    "Contributor 3 Touch Time,Region,Country Code,State,City,Postal Code,DMA,IP,WIFI,Operator,"
    "Carrier,Language,AppsFlyer ID,Advertising ID,IDFA,Android ID,Customer User ID,IMEI,IDFV,"
    "Platform,Device Type,OS Version,App Version,SDK Version,App ID,App Name,Bundle ID,"
    "Is Retargeting,Retargeting Conversion Type,Attribution Lookback,Reengagement Window,"
    "Is Primary Attribution,User Agent,HTTP Referrer,Original URL,Device Model,Keyword ID,"
    "Store Reinstall,Deeplink URL,OAID,Install App Store,Contributor 1 Match Type,"
    "Contributor 2 Match Type,Contributor 3 Match Type,Match Type,Device Category,"
    "Google Play Referrer,Google Play Click Time,Google Play Install Begin Time,Amazon Fire ID,"
    "Keyword Match Type,ATT,Conversion Type,Campaign Type,Is LAT"
).split(",")

SHOPIFY_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
    "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
    "Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,"
    "Lineitem sku,Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,"
    "Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,Billing City,"
    "Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,Shipping Street,"
    "Shipping Address1,Shipping Address2,Shipping Company,Shipping City,Shipping Zip,"
    "Shipping Province,Shipping Country,Shipping Phone,Notes,Note Attributes,Cancelled at,"
    "Payment Method,Payment Reference,Refunded Amount,Vendor,Outstanding Balance,Employee,"
    "Location,Device ID,Id,Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,Tax 1 Value,"
    "Tax 2 Name,Tax 2 Value,Tax 3 Name,Tax 3 Value,Tax 4 Name,Tax 4 Value,Tax 5 Name,"
    "Tax 5 Value,Phone,Receipt Number,Duties,Billing Province Name,Shipping Province Name,"
    "Payment ID,Payment Terms Name,Next Payment Due At,Payment References"
).split(",")

USERS_COLUMNS = (
    "user_id,email,phone,first_name,last_name,gender,birth_date,locale,country,region,city,"
    "home_lat,home_lon,timezone,acq_source,acq_medium,acq_campaign,install_time,attributes"
).split(",")
DEVICES_COLUMNS = (
    "user_id,device_id,platform,push_token,push_provider,push_enabled,os,os_version,"
    "device_model,app_version,last_seen"
).split(",")
CONSENTS_COLUMNS = "user_id,email,channel,purpose,granted,timestamp,source".split(",")

SHOP_ZONE = "Europe/Prague"
SHOP_APP_SOURCE = "6312449"  # the Shopify sales-channel id of the store's app
_UTC = dt.UTC


@dataclass(frozen=True)
class _City:
    name: str
    region: str
    lat: float
    lon: float
    weight: int
    zip: str
    state: str  # AppsFlyer State (subdivision code)
    province: str  # Shopify Billing Province (code) / Province Name
    province_name: str
    streets: tuple[str, ...]


@dataclass(frozen=True)
class _Country:
    code: str
    name: str  # English name, as Amplitude and GA4 give it
    locale: str  # mcrm locale tag
    language: str  # Amplitude display language
    lang_tag: str  # AppsFlyer Language / device language
    zone: str
    currency: str
    weight: int
    ios_share: float
    web_share: float
    phone: tuple[str, tuple[str, ...], int]  # +prefix, mobile prefixes, remaining digits
    carriers: tuple[str, ...]
    domains: tuple[str, ...]
    shipping: tuple[str, ...]
    tax: tuple[str, int]  # name, percent
    shipping_fee: int  # minor units
    free_over: int  # minor units
    continent: tuple[str, str, str]  # AppsFlyer Region, GA continent, sub-continent
    ip_prefix: str
    cities: tuple[_City, ...]


COUNTRIES: tuple[_Country, ...] = (
    _Country(
        "CZ",
        "Czechia",
        "cs",
        "Czech",
        "cs-CZ",
        "Europe/Prague",
        "CZK",
        26,
        0.35,
        0.10,
        ("+420", ("601", "603", "604", "605", "721", "724", "731", "736", "773", "777"), 6),
        ("T-Mobile CZ", "O2 CZ", "Vodafone CZ"),
        ("seznam.cz", "email.cz", "gmail.com", "centrum.cz", "gmail.com"),
        ("Zásilkovna - výdejní místo", "PPL - doručení na adresu", "Balíkovna"),
        ("CZ DPH 21%", 21),
        8900,
        150000,
        ("EU", "Europe", "Eastern Europe"),
        "192.0.2.",
        (
            _City(
                "Prague",
                "Prague",
                50.0755,
                14.4378,
                50,
                "110 00",
                "10",
                "",
                "",
                (
                    "Vinohradská",
                    "Národní",
                    "Korunní",
                    "Milady Horákové",
                    "Bělehradská",
                    "Dejvická",
                ),
            ),
            _City(
                "Brno",
                "South Moravian",
                49.1951,
                16.6068,
                20,
                "602 00",
                "64",
                "",
                "",
                ("Masarykova", "Údolní", "Kounicova", "Lidická"),
            ),
            _City(
                "Ostrava",
                "Moravian-Silesian",
                49.8209,
                18.2625,
                15,
                "702 00",
                "80",
                "",
                "",
                ("Nádražní", "28. října", "Českobratrská"),
            ),
            _City(
                "Plzeň",
                "Plzeň Region",
                49.7384,
                13.3736,
                15,
                "301 00",
                "32",
                "",
                "",
                ("Klatovská", "Americká", "Husova"),
            ),
        ),
    ),
    _Country(
        "BG",
        "Bulgaria",
        "bg",
        "Bulgarian",
        "bg-BG",
        "Europe/Sofia",
        "EUR",
        14,
        0.30,
        0.08,
        ("+359", ("87", "88", "89", "98"), 7),
        ("A1 BG", "Yettel BG", "Vivacom"),
        ("abv.bg", "gmail.com", "mail.bg", "yahoo.com"),
        ("Speedy - до адрес", "Econt - до офис"),
        ("BG ДДС 20%", 20),
        690,
        6000,
        ("EU", "Europe", "Eastern Europe"),
        "198.51.100.",
        (
            _City(
                "Sofia",
                "Sofia-Capital",
                42.6977,
                23.3219,
                55,
                "1000",
                "22",
                "",
                "",
                ("bul. Vitosha", "ul. Graf Ignatiev", "bul. Tsar Osvoboditel", "ul. Shipka"),
            ),
            _City(
                "Plovdiv",
                "Plovdiv",
                42.1354,
                24.7453,
                25,
                "4000",
                "16",
                "",
                "",
                ("ul. Knyaz Alexander I", "bul. Ruski", "ul. Otets Paisiy"),
            ),
            _City(
                "Varna",
                "Varna",
                43.2141,
                27.9147,
                20,
                "9000",
                "03",
                "",
                "",
                ("bul. Slivnitsa", "ul. Preslav", "bul. Knyaz Boris I"),
            ),
        ),
    ),
    _Country(
        "CN",
        "China",
        "zh-Hans",
        "Chinese",
        "zh-CN",
        "Asia/Shanghai",
        "CNY",
        11,
        0.25,
        0.05,
        ("+86", ("135", "138", "139", "150", "186", "188", "137", "159"), 8),
        ("China Mobile", "China Unicom", "China Telecom"),
        ("163.com", "qq.com", "126.com", "sina.com"),
        ("顺丰速运 SF Express", "京东物流 JD Logistics"),
        ("CN VAT 13%", 13),
        2500,
        30000,
        ("AS", "Asia", "Eastern Asia"),
        "203.0.113.",
        (
            _City(
                "Shanghai",
                "Shanghai",
                31.2304,
                121.4737,
                45,
                "200000",
                "SH",
                "SH",
                "Shanghai",
                ("南京西路", "淮海中路", "世纪大道"),
            ),
            _City(
                "Beijing",
                "Beijing",
                39.9042,
                116.4074,
                35,
                "100000",
                "BJ",
                "BJ",
                "Beijing",
                ("建国门外大街", "中关村大街", "王府井大街"),
            ),
            _City(
                "Shenzhen",
                "Guangdong",
                22.5431,
                114.0579,
                20,
                "518000",
                "GD",
                "GD",
                "Guangdong",
                ("深南大道", "华强北路"),
            ),
        ),
    ),
    _Country(
        "IT",
        "Italy",
        "it",
        "Italian",
        "it-IT",
        "Europe/Rome",
        "EUR",
        20,
        0.45,
        0.12,
        ("+39", ("320", "328", "333", "338", "347", "349", "366", "392"), 7),
        ("TIM", "Vodafone IT", "WindTre", "Iliad"),
        ("libero.it", "gmail.com", "virgilio.it", "hotmail.it", "alice.it"),
        ("BRT Standard", "Poste Italiane - Crono", "GLS"),
        ("IT IVA 22%", 22),
        690,
        6000,
        ("EU", "Europe", "Southern Europe"),
        "198.51.100.",
        (
            _City(
                "Milan",
                "Lombardy",
                45.4642,
                9.19,
                45,
                "20121",
                "25",
                "MI",
                "Milano",
                ("Via Paolo Sarpi", "Corso Buenos Aires", "Via Torino", "Viale Monza"),
            ),
            _City(
                "Rome",
                "Lazio",
                41.9028,
                12.4964,
                35,
                "00184",
                "62",
                "RM",
                "Roma",
                ("Via del Corso", "Via Nazionale", "Viale Trastevere"),
            ),
            _City(
                "Turin",
                "Piedmont",
                45.0703,
                7.6869,
                20,
                "10121",
                "21",
                "TO",
                "Torino",
                ("Via Roma", "Corso Vittorio Emanuele II", "Via Po"),
            ),
        ),
    ),
    _Country(
        "RU",
        "Russia",
        "ru",
        "Russian",
        "ru-RU",
        "Europe/Moscow",
        "RUB",
        12,
        0.30,
        0.08,
        ("+7", ("903", "905", "910", "915", "916", "926", "985", "999"), 7),
        ("MTS RUS", "Beeline", "MegaFon", "Tele2 RU"),
        ("yandex.ru", "mail.ru", "gmail.com", "rambler.ru"),
        ("СДЭК - пункт выдачи", "Почта России"),
        ("RU НДС 20%", 20),
        39000,
        500000,
        ("EU", "Europe", "Eastern Europe"),
        "203.0.113.",
        (
            _City(
                "Moscow",
                "Moscow",
                55.7558,
                37.6173,
                50,
                "101000",
                "MOW",
                "MOW",
                "Moscow",
                ("ул. Тверская", "ул. Арбат", "Ленинский пр.", "ул. Покровка"),
            ),
            _City(
                "Saint Petersburg",
                "St.-Petersburg",
                59.9311,
                30.3609,
                30,
                "190000",
                "SPE",
                "SPE",
                "Saint Petersburg",
                ("Невский пр.", "ул. Рубинштейна"),
            ),
            _City(
                "Kazan",
                "Tatarstan Republic",
                55.7963,
                49.1088,
                20,
                "420111",
                "TA",
                "TA",
                "Tatarstan",
                ("ул. Баумана", "ул. Пушкина"),
            ),
        ),
    ),
    _Country(
        "GB",
        "United Kingdom",
        "en",
        "English",
        "en-GB",
        "Europe/London",
        "GBP",
        17,
        0.55,
        0.12,
        ("+44", ("7700", "7711", "7723", "7747", "7801", "7912", "7958"), 6),
        ("EE", "Vodafone UK", "O2 UK", "Three UK"),
        ("gmail.com", "outlook.com", "hotmail.co.uk", "icloud.com", "yahoo.co.uk"),
        ("Royal Mail Tracked 48", "DPD Next Day", "Evri Standard"),
        ("GB VAT 20%", 20),
        495,
        5000,
        ("EU", "Europe", "Northern Europe"),
        "192.0.2.",
        (
            _City(
                "London",
                "England",
                51.5074,
                -0.1278,
                55,
                "EC1R 4QE",
                "ENG",
                "ENG",
                "England",
                ("Exmouth Market", "Upper Street", "Brick Lane", "King's Road"),
            ),
            _City(
                "Manchester",
                "England",
                53.4808,
                -2.2426,
                25,
                "M1 1AE",
                "ENG",
                "ENG",
                "England",
                ("Deansgate", "Oldham Street", "Portland Street"),
            ),
            _City(
                "Edinburgh",
                "Scotland",
                55.9533,
                -3.1883,
                20,
                "EH1 1YZ",
                "SCT",
                "SCT",
                "Scotland",
                ("Leith Walk", "Rose Street", "Princes Street"),
            ),
        ),
    ),
)

# Stores the app's location pings pass by: (name, city, lat, lon).
STORES = (
    ("Lumen Praha Centrum", "Prague", 50.0875, 14.4213),
    ("Lumen Sofia Vitosha", "Sofia", 42.6977, 23.3219),
    ("Lumen Milano Duomo", "Milan", 45.4642, 9.19),
)

# (native, latin) first names by locale and gender; last names (male, female, latin m, latin f).
_FIRST: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "cs": {
        "female": tuple(
            (n, "")
            for n in "Tereza Eliška Anna Kateřina Lucie Veronika Petra "
            "Jana Barbora Markéta Adéla Klára".split()
        ),
        "male": tuple(
            (n, "")
            for n in "Jakub Jan Tomáš Petr Martin Lukáš Ondřej David "
            "Vojtěch Jiří Matěj Filip".split()
        ),
    },
    "bg": {
        "female": (
            ("Мария", "Maria"),
            ("Иванка", "Ivanka"),
            ("Елена", "Elena"),
            ("Десислава", "Desislava"),
            ("Габриела", "Gabriela"),
            ("Виктория", "Viktoria"),
            ("Николета", "Nikoleta"),
            ("Радостина", "Radostina"),
        ),
        "male": (
            ("Георги", "Georgi"),
            ("Иван", "Ivan"),
            ("Димитър", "Dimitar"),
            ("Николай", "Nikolay"),
            ("Петър", "Petar"),
            ("Стоян", "Stoyan"),
            ("Александър", "Aleksandar"),
            ("Христо", "Hristo"),
        ),
    },
    "zh-Hans": {
        "female": (
            ("芳", "Fang"),
            ("娜", "Na"),
            ("静", "Jing"),
            ("丽", "Li"),
            ("婷", "Ting"),
            ("雪", "Xue"),
            ("敏", "Min"),
            ("慧", "Hui"),
        ),
        "male": (
            ("伟", "Wei"),
            ("强", "Qiang"),
            ("磊", "Lei"),
            ("军", "Jun"),
            ("洋", "Yang"),
            ("杰", "Jie"),
            ("浩", "Hao"),
            ("鹏", "Peng"),
        ),
    },
    "it": {
        "female": tuple(
            (n, "")
            for n in "Giulia Francesca Chiara Sara Martina Valentina "
            "Alessia Federica Elena Giorgia".split()
        ),
        "male": tuple(
            (n, "")
            for n in "Luca Marco Alessandro Matteo Lorenzo Andrea "
            "Francesco Davide Simone Niccolò".split()
        ),
    },
    "ru": {
        "female": (
            ("Анна", "Anna"),
            ("Ольга", "Olga"),
            ("Екатерина", "Ekaterina"),
            ("Наталья", "Natalya"),
            ("Татьяна", "Tatyana"),
            ("Мария", "Maria"),
            ("Светлана", "Svetlana"),
            ("Дарья", "Darya"),
        ),
        "male": (
            ("Дмитрий", "Dmitry"),
            ("Алексей", "Aleksey"),
            ("Сергей", "Sergey"),
            ("Андрей", "Andrey"),
            ("Михаил", "Mikhail"),
            ("Иван", "Ivan"),
            ("Никита", "Nikita"),
            ("Артём", "Artem"),
        ),
    },
    "en": {
        "female": tuple(
            (n, "")
            for n in "Olivia Emily Charlotte Amelia Sophie Jessica Hannah Grace Chloe Isla".split()
        ),
        "male": tuple(
            (n, "")
            for n in "Oliver George Harry Jack James Thomas William Daniel Noah Callum".split()
        ),
    },
}
_LAST: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "cs": tuple(
        (m, f, "", "")
        for m, f in (
            ("Novák", "Nováková"),
            ("Svoboda", "Svobodová"),
            ("Novotný", "Novotná"),
            ("Dvořák", "Dvořáková"),
            ("Černý", "Černá"),
            ("Procházka", "Procházková"),
            ("Kučera", "Kučerová"),
            ("Veselý", "Veselá"),
            ("Horák", "Horáková"),
            ("Němec", "Němcová"),
            ("Marek", "Marková"),
            ("Pokorný", "Pokorná"),
        )
    ),
    "bg": (
        ("Петров", "Петрова", "Petrov", "Petrova"),
        ("Иванов", "Иванова", "Ivanov", "Ivanova"),
        ("Георгиев", "Георгиева", "Georgiev", "Georgieva"),
        ("Димитров", "Димитрова", "Dimitrov", "Dimitrova"),
        ("Стоянов", "Стоянова", "Stoyanov", "Stoyanova"),
        ("Николов", "Николова", "Nikolov", "Nikolova"),
        ("Христов", "Христова", "Hristov", "Hristova"),
    ),
    "zh-Hans": tuple(
        (n, n, lat, lat)
        for n, lat in (
            ("王", "Wang"),
            ("李", "Li"),
            ("张", "Zhang"),
            ("刘", "Liu"),
            ("陈", "Chen"),
            ("杨", "Yang"),
            ("黄", "Huang"),
            ("赵", "Zhao"),
        )
    ),
    "it": tuple(
        (n, n, "", "")
        for n in (
            "Rossi",
            "Russo",
            "Ferrari",
            "Esposito",
            "Bianchi",
            "Romano",
            "Colombo",
            "Ricci",
            "Marino",
            "Greco",
            "Conti",
            "De Luca",
        )
    ),
    "ru": (
        ("Иванов", "Иванова", "Ivanov", "Ivanova"),
        ("Смирнов", "Смирнова", "Smirnov", "Smirnova"),
        ("Кузнецов", "Кузнецова", "Kuznetsov", "Kuznetsova"),
        ("Попов", "Попова", "Popov", "Popova"),
        ("Соколов", "Соколова", "Sokolov", "Sokolova"),
        ("Лебедев", "Лебедева", "Lebedev", "Lebedeva"),
        ("Волков", "Волкова", "Volkov", "Volkova"),
    ),
    "en": tuple(
        (n, n, "", "")
        for n in (
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Johnson",
            "Davies",
            "Bennett",
            "Evans",
            "Thompson",
            "O'Brien",
        )
    ),
}

# (sku, name, category, price in EUR cents)
CATALOGUE: tuple[tuple[str, str, str, int], ...] = (
    ("LS-CAN-0421", "Soy Candle - Amber & Oud / 220 g", "Candles", 2490),
    ("LS-CAN-0422", "Soy Candle - Fig Leaf / 220 g", "Candles", 2490),
    ("LS-CAN-0430", "Travel Candle Trio", "Candles", 1990),
    ("LS-CAN-0455", "Beeswax Taper Candles (4 pcs)", "Candles", 1490),
    ("LS-THR-0213", "Linen Throw - Sage", "Textiles", 5900),
    ("LS-THR-0214", "Linen Throw - Terracotta", "Textiles", 5900),
    ("LS-CSH-0301", "Wool Cushion Cover - Oat", "Textiles", 3490),
    ("LS-TWL-0330", "Waffle Towel Set", "Textiles", 3990),
    ("LS-BED-0350", "Washed Linen Duvet Cover", "Textiles", 11900),
    ("LS-MUG-0107", "Ceramic Mug - Ochre", "Tableware", 1250),
    ("LS-MUG-0108", "Ceramic Mug - Sea Salt", "Tableware", 1250),
    ("LS-PLT-0120", "Stoneware Dinner Plate", "Tableware", 1690),
    ("LS-BWL-0125", "Speckled Serving Bowl", "Tableware", 2990),
    ("LS-GLS-0140", "Recycled Glass Tumblers (4 pcs)", "Tableware", 2490),
    ("LS-LMP-0501", "Rattan Table Lamp", "Lighting", 8900),
    ("LS-LMP-0510", "Paper Pendant Shade", "Lighting", 4900),
    ("LS-LGT-0520", "LED String Lights - Warm", "Lighting", 1990),
    ("LS-VAS-0601", "Hand-blown Vase - Amber", "Decor", 3990),
    ("LS-VAS-0602", "Ceramic Bud Vase", "Decor", 1490),
    ("LS-FRM-0610", "Oak Picture Frame A4", "Decor", 2290),
    ("LS-MIR-0620", "Round Wall Mirror", "Decor", 7900),
    ("LS-BSK-0630", "Seagrass Storage Basket", "Decor", 2790),
    ("LS-DIF-0701", "Reed Diffuser - Cedar", "Fragrance", 2690),
    ("LS-DIF-0702", "Reed Diffuser Refill", "Fragrance", 1590),
    ("LS-SOP-0801", "Olive Oil Hand Soap", "Bath", 990),
    ("LS-SOP-0802", "Hand Cream - Neroli", "Bath", 1290),
    ("LS-BTH-0810", "Bath Salts - Lavender", "Bath", 1490),
    ("LS-KIT-0901", "Olive Wood Spoon Set", "Kitchen", 1790),
    ("LS-KIT-0910", "Linen Apron - Charcoal", "Kitchen", 2990),
    ("LS-KIT-0920", "Enamel Coffee Pot", "Kitchen", 3490),
    ("LS-GFT-0990", "Gift Card", "Gift Cards", 5000),
)

# Acquisition: media source -> (share, campaign stem, channel choices, medium)
_MEDIA = {
    "Facebook Ads": ("fb", ("Instagram", "Facebook"), "paid_social"),
    "googleadwords_int": ("uac", ("ACI_Search", "ACI_Youtube", "ACI_Display"), "cpc"),
    "tiktokglobal_int": ("tt", ("",), "paid_social"),
    "Apple Search Ads": ("asa", ("",), "cpc"),
    "huaweiadsglobal_int": ("hw", ("",), "cpc"),
    "organic": ("", ("",), "organic"),
}
_SEASONS = (
    (12, "Winter"),
    (1, "Winter"),
    (2, "Winter"),
    (3, "Spring"),
    (4, "Spring"),
    (5, "Spring"),
    (6, "Summer"),
    (7, "Summer"),
    (8, "Summer"),
    (9, "Autumn"),
    (10, "Autumn"),
    (11, "Autumn"),
)
_THEMES = {"Winter": "Cosy", "Spring": "Fresh", "Summer": "Outdoor", "Autumn": "Home"}
_CPI_EUR = {
    "Facebook Ads": 1.9,
    "googleadwords_int": 2.4,
    "tiktokglobal_int": 1.3,
    "Apple Search Ads": 3.1,
    "huaweiadsglobal_int": 0.9,
}

# (version, days before `end` it shipped)
_APP_VERSIONS = (
    ("4.0.0", 420),
    ("4.0.3", 330),
    ("4.1.0", 240),
    ("4.1.2", 160),
    ("4.2.0", 80),
    ("4.2.1", 45),
)

_ANDROID = (  # device_type, model, manufacturer, brand, family, weight, china
    ("Samsung Galaxy S23 Ultra", "SM-S918B", "samsung", "samsung", "Samsung Phone", 10, False),
    ("Samsung Galaxy A55 5G", "SM-A556B", "samsung", "samsung", "Samsung Phone", 16, False),
    ("Samsung Galaxy S24", "SM-S921B", "samsung", "samsung", "Samsung Phone", 12, False),
    ("Google Pixel 8", "Pixel 8", "Google", "google", "Google Phone", 7, False),
    ("Motorola moto g84 5G", "moto g84 5G", "motorola", "motorola", "Motorola Phone", 5, False),
    ("Xiaomi 14", "23127PN0CG", "Xiaomi", "Xiaomi", "Xiaomi Phone", 8, True),
    ("Redmi Note 13 Pro", "23117RA68G", "Xiaomi", "Redmi", "Xiaomi Phone", 10, True),
    ("HUAWEI P60 Pro", "MNA-AL00", "HUAWEI", "HUAWEI", "Huawei Phone", 6, True),
    ("OPPO Find X7", "PHZ110", "OPPO", "OPPO", "Oppo Phone", 4, True),
)
_IPHONES = (  # device_type, model identifier, weight
    ("Apple iPhone 13", "iPhone14,5", 10),
    ("Apple iPhone 14", "iPhone14,7", 10),
    ("Apple iPhone 15", "iPhone15,4", 14),
    ("Apple iPhone 15 Pro Max", "iPhone16,2", 7),
    ("Apple iPhone 16", "iPhone17,3", 12),
    ("Apple iPhone 16 Pro", "iPhone17,1", 9),
    ("Apple iPhone SE (3rd generation)", "iPhone14,6", 4),
)
_BROWSERS = (
    ("Chrome", "Windows", 45),
    ("Chrome", "Mac", 15),
    ("Safari", "Mac", 20),
    ("Firefox", "Windows", 8),
    ("Edge", "Windows", 12),
)

_SCREENS = ("Home", "Catalog", "Search", "Collections", "Profile", "Wishlist", "StoreLocator")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _local_price(eur_cents: int, currency: str) -> int:
    """A price-list price in `currency` minor units (psychological rounding)."""
    if currency == "CZK":
        return max(4900, (round(eur_cents * 25 / 1000) * 10 - 1) * 100)
    if currency == "BGN":
        return max(199, round(eur_cents * 1.95583 / 100) * 100 - 1)
    if currency == "GBP":
        return max(100, round(eur_cents * 0.86 / 50) * 50)
    if currency == "CNY":
        return max(1900, (round(eur_cents * 8 / 100) - 1) * 100)
    if currency == "RUB":
        return max(9000, (round(eur_cents * 100 / 1000) * 10 - 10) * 100)
    return eur_cents


def _fmt_ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _fmt_utc(t: dt.datetime) -> str:
    """Canonical CSV timestamps carry their zone, so any workspace zone reads them right."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt_amp(t: dt.datetime) -> str:
    """Amplitude's `2026-09-05 16:14:09.903000` (millisecond precision)."""
    text = t.isoformat(" ", "milliseconds")
    return text + "000"


def _uuid1(t: dt.datetime, rng: random.Random) -> str:
    """A time-based (version 1) UUID as Amplitude's servers make them."""
    ticks = int((t - dt.datetime(1582, 10, 15)).total_seconds() * 10_000_000)
    clock = 0x8000 | rng.getrandbits(14)
    return (
        f"{ticks & 0xFFFFFFFF:08x}-{(ticks >> 32) & 0xFFFF:04x}-"
        f"{0x1000 | ((ticks >> 48) & 0x0FFF):04x}-{clock:04x}-0242ac12000{rng.randint(2, 4)}"
    )


def _epoch_ms(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=_UTC).timestamp() * 1000)


def _to_utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return local.replace(tzinfo=zone).astimezone(_UTC).replace(tzinfo=None)


def _to_local(t: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return t.replace(tzinfo=_UTC).astimezone(zone).replace(tzinfo=None)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass
class _Ev:
    ts: dt.datetime
    name: str
    props: dict[str, Any]
    session: int  # epoch ms of the session start, -1 outside a session
    lat: float | None = None
    lon: float | None = None
    anonymous: bool = False  # before login: no user_id


@dataclass
class _Order:
    user: _User | None
    email: str
    created: dt.datetime  # UTC
    currency: str
    lines: list[tuple[str, str, str, int, int, int]]  # sku, name, category, qty, price, cmp
    channel: str  # app / web / store
    status: str  # paid / refunded / voided / partially_refunded
    discount_code: str
    country: _Country
    city: _City
    first_name: str
    last_name: str
    phone: str
    accepts_marketing: bool
    store: str = ""
    name: str = ""
    number: int = 0


@dataclass
class _User:
    n: int
    user_id: str
    country: _Country
    city: _City
    zone: ZoneInfo
    gender: str
    first: tuple[str, str]  # native, latin
    last: tuple[str, str]
    email: str
    phone: str
    birth: date
    platform: str  # ios / android / web
    device: tuple[Any, ...]
    device_id: str
    home: tuple[float, float]
    first_seen: dt.datetime
    windows: list[tuple[dt.datetime, dt.datetime]]
    archetype: str
    media: str
    campaign: str
    channel: str
    att: bool
    loyalty: str = "none"
    favourite: str = ""
    events: list[_Ev] = field(default_factory=list)
    consents: list[tuple[dt.datetime, str, str, bool, str]] = field(default_factory=list)
    orders: list[_Order] = field(default_factory=list)
    firebase: bool = False
    loc_home: bool = False
    store: tuple[str, str, float, float] | None = None
    buyer: str = "none"
    fb_pseudo: str = ""
    af_id: str = ""
    adid: str = ""
    idfa: str = ""
    ip: str = ""
    carrier: str = ""
    version_lag: int = 0
    os_major: int = 0

    @property
    def last_active(self) -> dt.datetime:
        return self.windows[-1][1]

    def consent_at(self, channel: str, t: dt.datetime) -> bool:
        state = False
        for ts, ch, purpose, granted, _src in self.consents:
            if ch == channel and purpose == "marketing" and ts <= t:
                state = granted
        return state

    def active_at(self, t: dt.datetime) -> bool:
        return any(a <= t <= b for a, b in self.windows)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _uuid(rng: random.Random, upper: bool = False) -> str:
    h = f"{rng.getrandbits(128):032x}"
    s = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"
    return s.upper() if upper else s


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _token(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _wpick(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


_SESSION_HOURS = (
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.4,
    1,
    2.5,
    3,
    3,
    3,
    3.5,
    4.5,
    4,
    3,
    3,
    3.5,
    4,
    5,
    6,
    7,
    7,
    5,
    3,
)


class _Sample:
    """Builds the sample in memory (one `random.Random`, fixed call order), then writes it."""

    def __init__(self, n_users: int, seed: int, end: date) -> None:
        self.rng = random.Random(seed)
        self.n_users = n_users
        self.end = end
        self.horizon = dt.datetime.combine(end, dt.time(21, 0))  # UTC, last moment of data
        self.start = self.horizon - dt.timedelta(days=365)
        self.zones = {c.zone: ZoneInfo(c.zone) for c in COUNTRIES}
        self.shop_zone = ZoneInfo(SHOP_ZONE)
        self.users: list[_User] = []
        self.orders: list[_Order] = []
        self.emails: set[str] = set()
        self.newsletter: list[tuple[dt.datetime, str, bool]] = []
        self.fx = self._fx_rates()

    # -- basics ---------------------------------------------------------------------------

    def _fx_rates(self) -> dict[str, dict[date, float]]:
        rng = self.rng
        base = {"BGN": 1 / 1.95583, "CNY": 1 / 8.25, "CZK": 1 / 24.6, "GBP": 1.16, "RUB": 1 / 96}
        vol = {"BGN": 0.0, "CNY": 0.003, "CZK": 0.002, "GBP": 0.003, "RUB": 0.008}
        first = self.start.date() - dt.timedelta(days=14)
        days = (self.horizon.date() - first).days + 1
        out: dict[str, dict[date, float]] = {}
        for cur in sorted(base):
            x, series = 0.0, {}
            for d in range(days):
                x = 0.97 * x + rng.gauss(0, vol[cur]) if vol[cur] else 0.0
                series[first + dt.timedelta(days=d)] = base[cur] * math.exp(x * 4)
            out[cur] = series
        return out

    def to_eur(self, cents: int, currency: str, day: date) -> float:
        if currency == "EUR":
            return cents / 100
        return cents / 100 * self.fx[currency][day]

    def local_time(self, u_zone: ZoneInfo, day: date, hours: Sequence[float]) -> dt.datetime:
        rng = self.rng
        h = _wpick(rng, range(24), hours)
        local = dt.datetime.combine(day, dt.time(h, rng.randrange(60), rng.randrange(60)))
        local += dt.timedelta(microseconds=rng.randrange(1_000_000))
        return _to_utc(local, u_zone)

    def app_version(self, u: _User, t: dt.datetime) -> str:
        days_before = (self.horizon - t).days + u.version_lag
        version = _APP_VERSIONS[0][0]
        for v, shipped in _APP_VERSIONS:
            if shipped >= days_before:
                version = v
        return version

    def os_version(self, u: _User, t: dt.datetime) -> str:
        if u.platform == "android":
            return str(u.os_major)
        if u.platform == "web":
            return str(u.os_major)
        days_before = (self.horizon - t).days + u.version_lag
        if days_before < 61:
            return ("26.0", "26.0.1", "26.1")[min(2, max(0, (61 - days_before) // 20))]
        minor = max(0, min(6, 6 - days_before // 50))
        return f"18.{minor}" if minor else "18.0.1"

    # -- people ---------------------------------------------------------------------------

    def new_person(
        self, country: _Country
    ) -> tuple[str, tuple[str, str], tuple[str, str], str, str, _City]:
        rng = self.rng
        gender = _wpick(rng, ("female", "male", "other", ""), (48, 47, 1, 4))
        g = gender if gender in ("female", "male") else rng.choice(("female", "male"))
        fn, fl = rng.choice(_FIRST[country.locale][g])
        lm, lf, llm, llf = rng.choice(_LAST[country.locale])
        ln, ll = (lf, llf) if g == "female" else (lm, llm)
        if country.locale == "bg" and rng.random() < 0.4:  # typed in Latin script
            fn, ln = fl, ll
        first = (fn, fl or _ascii(fn))
        last = (ln, ll or _ascii(ln))
        city = _wpick(rng, country.cities, [c.weight for c in country.cities])
        email = self.new_email(country, first[1], last[1])
        code, prefixes, digits = country.phone
        phone = (
            code + rng.choice(prefixes) + "".join(str(rng.randrange(10)) for _ in range(digits))
        )
        return gender, first, last, email, phone, city

    def new_email(self, country: _Country, first: str, last: str) -> str:
        rng = self.rng
        f, la = first.lower().replace("'", ""), last.lower().replace("'", "").replace(" ", "")
        domain = rng.choice(country.domains)
        for attempt in range(50):
            style = rng.randrange(5)
            if domain == "qq.com":
                local = str(rng.randrange(10_000_000, 2_999_999_999))
            elif style == 0:
                local = f"{f}.{la}"
            elif style == 1:
                local = f"{f}{la}{rng.randrange(1, 99)}"
            elif style == 2:
                local = f"{f[0]}.{la}"
            elif style == 3:
                local = f"{la}.{f}{rng.randrange(70, 100) if attempt else ''}"
            else:
                local = f"{f}_{la}{rng.randrange(1960, 2010)}"
            email = f"{local}@{domain}"
            if email not in self.emails:
                self.emails.add(email)
                return email
        raise AssertionError("could not make a unique e-mail")  # pragma: no cover

    def birth_date(self) -> date:
        rng = self.rng
        if rng.random() < 0.015:  # birthday in the week after `end`
            age = rng.randint(18, 70)
            b = self.end + dt.timedelta(days=rng.randint(1, 7))
            return b.replace(year=b.year - age) if not (b.month == 2 and b.day == 29) else b
        age = min(75, max(16, round(rng.triangular(16, 75, 31))))
        d0 = date(self.end.year - age - 1, self.end.month, 1) + dt.timedelta(days=15)
        return d0 + dt.timedelta(days=rng.randrange(365))

    def build_users(self) -> None:
        rng = self.rng
        archetypes = ("new", "active", "at_risk", "dormant", "churned", "reactivated")
        arch_w = (6, 34, 10, 9, 34, 7)
        for n in range(self.n_users):
            country = _wpick(rng, COUNTRIES, [c.weight for c in COUNTRIES])
            gender, first, last, email, phone, city = self.new_person(country)
            zone = self.zones[country.zone]
            r = rng.random()
            platform = (
                "web"
                if r < country.web_share
                else "ios"
                if r < country.web_share + country.ios_share
                else "android"
            )
            if platform == "android":
                cands = [d for d in _ANDROID if d[6] == (country.code == "CN")]
                device: tuple[Any, ...] = _wpick(rng, cands, [d[5] for d in cands])
            elif platform == "ios":
                device = _wpick(rng, _IPHONES, [d[2] for d in _IPHONES])
            else:
                device = _wpick(rng, _BROWSERS, [d[2] for d in _BROWSERS])
            arch = _wpick(rng, archetypes, arch_w)
            windows = self.activity_windows(arch)
            media, campaign, channel = self.acquisition(country, platform, windows[0][0])
            jitter = (rng.gauss(0, 0.02), rng.gauss(0, 0.03))
            u = _User(
                n=n,
                user_id=f"usr_{10001 + n}",
                country=country,
                city=city,
                zone=zone,
                gender=gender,
                first=first,
                last=last,
                email=email if not (country.code == "CN" and rng.random() < 0.25) else "",
                phone=phone if rng.random() < 0.7 else "",
                birth=self.birth_date(),
                platform=platform,
                device=device,
                device_id=_uuid(rng, upper=platform == "ios"),
                home=(round(city.lat + jitter[0], 5), round(city.lon + jitter[1], 5)),
                first_seen=windows[0][0],
                windows=windows,
                archetype=arch,
                media=media,
                campaign=campaign,
                channel=channel,
                att=platform == "ios" and rng.random() < 0.3,
            )
            if platform == "web":
                u.device_id = _uuid(rng) + "R"
            u.version_lag = rng.choice((0, 0, 1, 3, 7, 14, 30))
            u.os_major = (
                rng.choice((13, 14, 15, 15, 16, 16))
                if platform == "android"
                else rng.choice((120, 131, 141, 142))
            )
            u.adid = _uuid(rng) if platform == "android" and country.code != "CN" else ""
            u.idfa = _uuid(rng, upper=True) if u.att else ""
            u.ip = country.ip_prefix + str(rng.randint(2, 254))
            u.carrier = rng.choice(country.carriers)
            af_ms = _epoch_ms(u.first_seen) - rng.randint(100, 900)
            u.af_id = f"{af_ms}-{rng.randint(10**6, 10**7 - 1)}"
            u.favourite = rng.choice(sorted({c[2] for c in CATALOGUE if c[2] != "Gift Cards"}))
            u.firebase = platform != "web" and rng.random() < 0.15
            u.fb_pseudo = f"{rng.getrandbits(128):032x}"
            if platform == "ios":
                u.fb_pseudo = u.fb_pseudo.upper()
            self.users.append(u)

    def activity_windows(self, arch: str) -> list[tuple[dt.datetime, dt.datetime]]:
        rng = self.rng
        H, S = self.horizon, self.start

        def ago(lo: float, hi: float) -> dt.datetime:
            return H - dt.timedelta(days=rng.uniform(lo, hi))

        if arch == "new":
            first = ago(0.1, 6.8)
            return [(first, first + (H - first) * rng.random())]
        if arch == "active":
            last = ago(0, 25)
            first = max(S, last - dt.timedelta(days=rng.uniform(10, 360)))
            return [(first, last)]
        if arch == "at_risk":
            last = ago(32, 58)
            return [(max(S, last - dt.timedelta(days=rng.uniform(5, 300))), last)]
        if arch == "dormant":
            last = ago(62, 88)
            return [(max(S, last - dt.timedelta(days=rng.uniform(3, 270))), last)]
        if arch == "churned":
            last = ago(95, 362)
            span = rng.uniform(0, 2) if rng.random() < 0.4 else rng.uniform(2, 150)
            return [(max(S, last - dt.timedelta(days=span)), last)]
        # reactivated: active early, a gap of over 60 days, back within the last 30 days
        first = ago(200, 362)
        gap_start = first + dt.timedelta(days=rng.uniform(5, 90))
        back = ago(2, 28)
        if (back - gap_start).days <= 65:
            gap_start = back - dt.timedelta(days=70)
        return [(first, gap_start), (back, back + (H - back) * rng.uniform(0.3, 1.0))]

    def acquisition(self, c: _Country, platform: str, t: dt.datetime) -> tuple[str, str, str]:
        rng = self.rng
        if platform == "web":
            src = _wpick(rng, ("google", "facebook", "direct", "newsletter"), (40, 20, 35, 5))
            return src, "", ""
        if c.code == "CN":
            media = (
                "organic"
                if rng.random() < 0.65
                else ("huaweiadsglobal_int" if platform == "android" else "Apple Search Ads")
            )
        else:
            media = _wpick(
                rng,
                (
                    "organic",
                    "Facebook Ads",
                    "googleadwords_int",
                    "tiktokglobal_int",
                    "Apple Search Ads",
                ),
                (35, 25, 22, 12, 6 if platform == "ios" else 0),
            )
        return media, self.campaign_name(c, platform, media, t), rng.choice(_MEDIA[media][1])

    @staticmethod
    def campaign_name(c: _Country, platform: str, media: str, t: dt.datetime) -> str:
        season = dict(_SEASONS)[t.month]
        year = t.year - 1 if t.month in (1, 2) else t.year
        plat = "iOS" if platform == "ios" else "Android"
        stem = _MEDIA[media][0]
        if stem == "fb":
            return f"{c.code}_{plat}_{season}_{_THEMES[season]}_{year}"
        if stem == "uac":
            return f"{c.code}_{plat}_UAC_{season}_{year}"
        if stem == "tt":
            return f"{c.code}_{plat}_{season}_UGC_{year}"
        if stem == "asa":
            return f"{c.code}_Brand_Exact"
        if stem == "hw":
            return f"CN_Android_AppGallery_{season}_{year}"
        return ""

    # -- behaviour ------------------------------------------------------------------------

    def build_consents(self, u: _User) -> None:
        rng = self.rng
        t0 = u.first_seen + dt.timedelta(seconds=rng.randint(60, 600))

        def later() -> dt.datetime:
            a, b = t0, u.last_active
            return a + (b - a) * rng.uniform(0.2, 1.0) if b > a else a

        if u.email:
            granted = rng.random() < 0.6
            u.consents.append((t0, "email", "marketing", granted, "app_signup"))
            if granted and rng.random() < 0.15:
                u.consents.append((later(), "email", "marketing", False, "unsubscribe_link"))
            elif not granted and rng.random() < 0.08:
                u.consents.append((later(), "email", "marketing", True, "preference_center"))
        if u.platform != "web" or rng.random() < 0.15:
            p = 0.55 if u.platform == "ios" else 0.85 if u.platform == "android" else 1.0
            granted = rng.random() < p
            src = "os_prompt" if u.platform != "web" else "web_push_prompt"
            u.consents.append((t0 - dt.timedelta(seconds=30), "push", "marketing", granted, src))
            if granted and rng.random() < 0.1:
                u.consents.append((later(), "push", "marketing", False, "os_settings"))
        if u.phone and rng.random() < 0.3:
            u.consents.append((t0, "sms", "marketing", True, "app_signup"))
            if rng.random() < 0.12:
                u.consents.append((later(), "sms", "marketing", False, "sms_stop"))

    def session_times(self, u: _User) -> list[dt.datetime]:
        """Session starts: a renewal process per activity window whose gaps never exceed
        40 days, so only the `reactivated` archetype has a dormant gap (> 60 days)."""
        rng = self.rng
        mean_gap = min(40.0, math.exp(rng.gauss(math.log(40), 0.5)))
        if u.archetype in ("new", "reactivated"):
            mean_gap = min(mean_gap, 10.0)
        times: list[dt.datetime] = []
        for a, b in u.windows:
            times.append(a)
            t = a
            while len(times) < 150:
                t += dt.timedelta(days=min(40.0, rng.expovariate(1 / mean_gap)))
                if t >= b:
                    break
                day = _to_local(t, u.zone).date()
                local = self.local_time(u.zone, day, _SESSION_HOURS)
                if a < local < b:
                    times.append(local)
            if b > a + dt.timedelta(minutes=5):
                times.append(b)
        return sorted(times)

    def add_session(
        self, u: _User, t: dt.datetime, opening: list[_Ev] | None = None, browse: bool = True
    ) -> tuple[dt.datetime, int]:
        """session_start, a few screens and products; returns (time after it, session id)."""
        rng = self.rng
        sid = _epoch_ms(t)
        for ev in opening or ():
            ev.session = sid
            u.events.append(ev)
        t += dt.timedelta(milliseconds=rng.randint(50, 900))
        u.events.append(_Ev(t, "session_start", {}, sid))

        def step() -> dt.datetime:
            return t + dt.timedelta(seconds=rng.randint(3, 80), microseconds=rng.randrange(10**6))

        if not browse or rng.random() < 0.15:
            t = step()
            u.events.append(
                _Ev(t, "[Amplitude] Screen Viewed", {"[Amplitude] Screen Name": "Home"}, sid)
            )
        if not browse:
            return t, sid
        for _ in range(_wpick(rng, (0, 1, 2), (88, 10, 2))):
            t = step()
            screen = rng.choice(_SCREENS)
            u.events.append(
                _Ev(t, "[Amplitude] Screen Viewed", {"[Amplitude] Screen Name": screen}, sid)
            )
        viewed = []
        for _ in range(_wpick(rng, (0, 1, 2, 3), (70, 20, 7, 3))):
            t = step()
            p = self.pick_product(u)
            viewed.append(p)
            u.events.append(_Ev(t, "product_view", self.product_props(u, p, t), sid))
        if viewed and rng.random() < 0.25:
            t = step()
            p = rng.choice(viewed)
            props = self.product_props(u, p, t)
            props.pop("product_name")
            props.pop("category")
            props = {"product_id": props["product_id"], "quantity": 1, **props}
            props.pop("screen")
            props["cart_value"] = props["price"]
            props["screen"] = "ProductDetail"
            u.events.append(_Ev(t, "add_to_cart", props, sid))
        if u.loc_home and rng.random() < 0.15:
            t = step()
            u.events.append(
                _Ev(
                    t,
                    "location",
                    {
                        "accuracy_m": rng.choice((12, 20, 35, 60, 150)),
                        "source": rng.choice(("fused", "gps", "network")),
                        "screen": "StoreLocator",
                    },
                    sid,
                    round(u.home[0] + rng.gauss(0, 0.006), 6),
                    round(u.home[1] + rng.gauss(0, 0.009), 6),
                )
            )
        return t, sid

    def pick_product(self, u: _User) -> tuple[str, str, str, int]:
        rng = self.rng
        if rng.random() < 0.5:
            fav = [p for p in CATALOGUE if p[2] == u.favourite]
            return rng.choice(fav)
        return rng.choice(CATALOGUE[:-1])

    def currency(self, c: _Country, t: dt.datetime) -> str:
        if c.code == "BG" and t < dt.datetime(2026, 1, 1):
            return "BGN"  # Bulgaria adopted the euro on 2026-01-01
        return c.currency

    def product_props(
        self, u: _User, p: tuple[str, str, str, int], t: dt.datetime
    ) -> dict[str, Any]:
        cur = self.currency(u.country, t)
        return {
            "product_id": p[0],
            "product_name": p[1],
            "category": p[2],
            "price": _local_price(p[3], cur) / 100,
            "currency": cur,
            "screen": "ProductDetail",
        }

    def purchase_times(self, u: _User) -> list[dt.datetime]:
        rng = self.rng
        if not u.email:
            return []
        # (none, heavy, regular, once) per persona. Many of the users who left (churned,
        # dormant, at risk) had been repeat buyers, so the shop shows real drop-out: the BG/NBD
        # fit of `mcrm predict clv` finds a drop-out probability per repeat purchase of about
        # 0.08, and lapsed repeat buyers get a low P(alive) (docs/predict.md). With repeat
        # buyers only among those who stayed, the fit sat at the no-drop-out limit.
        weights = {
            "new": (55, 0, 5, 40),
            "active": (30, 8, 32, 30),
            "at_risk": (30, 8, 32, 30),
            "dormant": (40, 8, 24, 28),
            "churned": (30, 15, 30, 25),
            "reactivated": (35, 5, 30, 30),
        }[u.archetype]
        u.buyer = _wpick(rng, ("none", "heavy", "regular", "once"), weights)
        if u.buyer == "none":
            return []
        if u.buyer == "once":
            a, b = u.windows[0]
            early = rng.random() < 0.5
            t = (
                a + dt.timedelta(hours=rng.uniform(0.1, 72))
                if early
                else a + (b - a) * rng.random()
            )
            return [min(t, b)]
        gap = rng.uniform(12, 28) if u.buyer == "heavy" else rng.uniform(35, 90)
        saturday = rng.random() < 0.22
        times: list[dt.datetime] = []
        for a, b in u.windows:
            t = a + dt.timedelta(days=rng.expovariate(2 / gap), hours=rng.uniform(0.1, 3))
            while t <= b and len(times) < 45:
                times.append(t)
                t += dt.timedelta(days=gap * math.exp(rng.gauss(0, 0.35)))
        if saturday:  # habit: Saturday around lunch, local time
            moved = []
            for t in times:
                if rng.random() < 0.85:
                    local = _to_local(t, u.zone)
                    d = local.date() + dt.timedelta(days=(5 - local.weekday()) % 7)
                    local = dt.datetime.combine(
                        d,
                        dt.time(
                            rng.choice((11, 12, 12, 13, 13, 14)),
                            rng.randrange(60),
                            rng.randrange(60),
                        ),
                    )
                    t2 = _to_utc(local, u.zone)
                    t = t2 if u.active_at(t2) else t
                moved.append(t)
            times = sorted(set(moved))
        if (
            u.buyer in ("heavy", "regular")
            and u.archetype == "active"
            and len(times) >= 5
            and rng.random() < 0.3
        ):  # overdue: stopped buying while still using the app
            cutoff = self.horizon - dt.timedelta(days=gap * rng.uniform(2.0, 3.5))
            kept = [t for t in times if t < cutoff]
            times = kept if len(kept) >= 3 else times
        return times

    def make_order(
        self,
        u: _User | None,
        email: str,
        c: _Country,
        city: _City,
        names: tuple[str, str],
        phone: str,
        t: dt.datetime,
        channel: str,
        first: bool,
        favourite: str,
        accepts: bool,
        store: str = "",
    ) -> _Order:
        rng = self.rng
        cur = self.currency(c, t)
        lines: list[tuple[str, str, str, int, int, int]] = []
        for _ in range(_wpick(rng, (1, 2, 3, 4), (50, 30, 14, 6))):
            if rng.random() < 0.5:
                p = rng.choice([p for p in CATALOGUE if p[2] == favourite])
            else:
                p = rng.choice(CATALOGUE)
            if any(ln[0] == p[0] for ln in lines):
                continue
            qty = _wpick(rng, (1, 2, 3), (75, 20, 5))
            price = _local_price(p[3], cur)
            cmp = _local_price(round(p[3] * 1.2), cur) if rng.random() < 0.15 else 0
            lines.append((p[0], p[1], p[2], qty, price, cmp))
        r = rng.random()
        status = (
            "refunded"
            if r < 0.04
            else "voided"
            if r < 0.06
            else "partially_refunded"
            if r < 0.08 and len(lines) > 1
            else "paid"
        )
        local = _to_local(t, self.shop_zone)
        season = dict(_SEASONS)[local.month].upper()
        code = (
            "WELCOME10"
            if first and rng.random() < 0.25
            else f"{season}{rng.choice((10, 15))}"
            if rng.random() < 0.08
            else ""
        )
        return _Order(
            u,
            email,
            t,
            cur,
            lines,
            channel,
            status,
            code,
            c,
            city,
            names[0],
            names[1],
            phone,
            accepts,
            store,
        )

    def build_behaviour(self, u: _User) -> None:
        rng = self.rng
        self.build_consents(u)
        store_city = next((s for s in STORES if s[1] == u.city.name), None)
        if u.platform != "web":
            u.loc_home = rng.random() < 0.3
            if store_city and rng.random() < 0.35:
                u.store = store_city
        # app install (before login)
        if u.platform != "web":
            u.events.append(
                _Ev(
                    u.first_seen,
                    "[Amplitude] Application Installed",
                    {
                        "[Amplitude] Version": self.app_version(u, u.first_seen),
                        "[Amplitude] Build": self.app_version(u, u.first_seen).replace(".", "")
                        + "0",
                    },
                    -1,
                    anonymous=True,
                )
            )
        purchases = self.purchase_times(u)
        order_times = set()
        for i, t in enumerate(purchases):
            if u.platform == "web":
                channel = "web"
            elif u.store and rng.random() < 0.35:
                channel = "store"
            elif store_city and rng.random() < 0.08:
                channel = "store"
            else:
                channel = "app" if rng.random() < 0.72 else "web"
            order = self.make_order(
                u,
                u.email,
                u.country,
                u.city,
                (u.first[0], u.last[0]),
                u.phone,
                t,
                channel,
                i == 0,
                u.favourite,
                u.consent_at("email", t),
                store=store_city[0] if channel == "store" and store_city else "",
            )
            u.orders.append(order)
            if channel == "app":
                order_times.add(t)
        # sessions (the first one right after install / first visit)
        for t in self.session_times(u):
            if t == u.first_seen:
                t += dt.timedelta(seconds=rng.randint(20, 300))
            self.add_session(u, t)
        # push opens from weekly campaigns (Thursday 10:00 local)
        if u.platform != "web":
            self.push_opens(u)
        if u.store:
            self.store_pings(u)

    def push_opens(self, u: _User) -> None:
        rng = self.rng
        a = u.first_seen
        local = _to_local(a, u.zone)
        d = local.date() + dt.timedelta(days=(3 - local.weekday()) % 7)
        while True:
            send = _to_utc(dt.datetime.combine(d, dt.time(10)), u.zone)
            if send > u.last_active:
                break
            d += dt.timedelta(days=7)
            if not u.active_at(send) or not u.consent_at("push", send) or rng.random() > 0.05:
                continue
            t = send + dt.timedelta(
                minutes=rng.expovariate(1 / 40), microseconds=rng.randrange(10**6)
            )
            if t > self.horizon:
                continue
            month = _to_local(send, u.zone).strftime("%b").lower()
            campaign = f"weekly_{month}_{u.country.code.lower()}"
            props = {
                "campaign_id": campaign,
                "message_id": f"0:{_epoch_ms(send)}{rng.randint(100000, 999999)}%"
                f"{rng.getrandbits(32):08x}",
                "push_provider": "apns" if u.platform == "ios" else "fcm",
                "deep_link": f"lumen://campaigns/{campaign}",
            }
            opening = [] if u.firebase else [_Ev(t, "push_open", props, 0)]
            if u.firebase:
                u.events.append(
                    _Ev(t, "notification_open", {"campaign": campaign, "send": send}, _epoch_ms(t))
                )
            self.add_session(u, t + dt.timedelta(seconds=1), opening, browse=rng.random() < 0.4)

    def store_pings(self, u: _User) -> None:
        rng = self.rng
        assert u.store is not None
        per_week = rng.uniform(0.4, 1.5)
        for a, b in u.windows:
            days = (b - a).total_seconds() / 86400
            for _ in range(min(30, _poisson(rng, per_week * days / 7))):
                day = _to_local(a + (b - a) * rng.random(), u.zone).date()
                hours = [0.0] * 8 + [2, 3, 2, 1, 4, 4, 2, 2, 3, 5, 5, 3] + [0.0] * 4
                t = self.local_time(u.zone, day, hours)
                if not a <= t <= b:
                    continue
                u.events.append(
                    _Ev(
                        t,
                        "location",
                        {
                            "accuracy_m": rng.choice((8, 12, 20, 35)),
                            "source": "background",
                            "place": "store_nearby",
                        },
                        -1,
                        round(u.store[2] + rng.gauss(0, 0.0008), 6),
                        round(u.store[3] + rng.gauss(0, 0.0011), 6),
                    )
                )

    def purchase_events(self) -> None:
        """The app's purchase events (and the session they happen in) for app orders."""
        rng = self.rng
        for o in self.orders:
            u = o.user
            if u is None or o.channel != "app":
                continue
            t, sid = self.add_session(
                u, o.created - dt.timedelta(minutes=rng.uniform(6, 12)), browse=False
            )
            total = self.order_total(o)
            for sku, name, cat, qty, price, _cmp in o.lines:
                t += dt.timedelta(seconds=rng.randint(5, 40))
                u.events.append(
                    _Ev(
                        t,
                        "product_view",
                        {
                            "product_id": sku,
                            "product_name": name,
                            "category": cat,
                            "price": price / 100,
                            "currency": o.currency,
                            "screen": "ProductDetail",
                        },
                        sid,
                    )
                )
                t += dt.timedelta(seconds=rng.randint(3, 30))
                u.events.append(
                    _Ev(
                        t,
                        "add_to_cart",
                        {
                            "product_id": sku,
                            "quantity": qty,
                            "price": price / 100,
                            "currency": o.currency,
                            "cart_value": qty * price / 100,
                            "screen": "ProductDetail",
                        },
                        sid,
                    )
                )
            u.events.append(
                _Ev(
                    o.created,
                    "purchase",
                    {
                        "order_id": o.name,
                        "$revenue": total["total"] / 100,
                        "$price": total["total"] / 100,
                        "$quantity": 1,
                        "$productId": "order",
                        "$revenueType": "purchase",
                        "$currency": o.currency,
                        "item_count": sum(ln[3] for ln in o.lines),
                        "skus": [ln[0] for ln in o.lines],
                        "shipping": total["shipping"] / 100,
                        "payment_method": rng.choice(
                            (
                                "card",
                                "card",
                                "apple_pay" if u.platform == "ios" else "google_pay",
                                "paypal",
                            )
                        ),
                        "coupon": o.discount_code or None,
                    },
                    sid,
                )
            )

    def order_total(self, o: _Order) -> dict[str, int]:
        gross = sum(q * p for _s, _n, _c, q, p, _m in o.lines)
        pct = int(o.discount_code[-2:]) if o.discount_code else 0
        discount = round(gross * pct / 100)
        subtotal = gross - discount
        c = o.country
        shipping = 0 if o.channel == "store" or subtotal >= c.free_over else c.shipping_fee
        if o.currency == "BGN":
            shipping = 0 if subtotal >= 11700 else 1350
        total = subtotal + shipping
        tax = total - round(total / (1 + c.tax[1] / 100))
        return {
            "gross": gross,
            "discount": discount,
            "subtotal": subtotal,
            "shipping": shipping,
            "total": total,
            "tax": tax,
        }

    def web_customers(self) -> None:
        """Shop customers who never used the app."""
        rng = self.rng
        for _ in range(self.n_users // 6):
            c = _wpick(rng, COUNTRIES, [x.weight for x in COUNTRIES])
            _g, first, last, email, phone, city = self.new_person(c)
            n = _wpick(rng, (1, 2, 3, 4, 6), (68, 16, 8, 5, 3))
            t = self.start + (self.horizon - self.start) * rng.random()
            accepts = rng.random() < 0.4
            fav = rng.choice(sorted({p[2] for p in CATALOGUE}))
            if rng.random() < 0.3:
                self.newsletter.append((t - dt.timedelta(days=rng.uniform(0, 30)), email, True))
            store_city = next((s for s in STORES if s[1] == city.name), None)
            for i in range(n):
                if t > self.horizon:
                    break
                channel = "store" if store_city and rng.random() < 0.15 else "web"
                self.orders.append(
                    self.make_order(
                        None,
                        email,
                        c,
                        city,
                        (first[0], last[0]),
                        phone if rng.random() < 0.6 else "",
                        t,
                        channel,
                        i == 0,
                        fav,
                        accepts,
                        store=store_city[0] if channel == "store" and store_city else "",
                    )
                )
                t += dt.timedelta(days=rng.uniform(10, 120))

    def build(self) -> None:
        self.build_users()
        for u in self.users:
            self.build_behaviour(u)
            self.orders.extend(u.orders)
        self.web_customers()
        self.orders.sort(key=lambda o: (o.created, o.email))
        for i, o in enumerate(self.orders):
            o.number = i
            o.name = f"#{1001 + i}"
        self.purchase_events()
        for u in self.users:
            u.events.sort(key=lambda e: e.ts)
            n_orders = sum(1 for o in u.orders if o.status != "voided")
            u.loyalty = "gold" if n_orders >= 8 else "silver" if n_orders >= 3 else "none"

    # -- writers --------------------------------------------------------------------------

    def user_properties(self, u: _User, consent: tuple[bool, bool]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if u.email:
            props["email"] = u.email
        props["first_name"] = u.first[0]
        props["last_name"] = u.last[0]
        props["locale"] = u.country.locale
        props["push_enabled"], props["marketing_email_opt_in"] = consent
        if u.gender:
            props["gender"] = u.gender
        if u.n % 7 != 3:
            props["birth_date"] = u.birth.isoformat()
        props["loyalty_tier"] = u.loyalty
        return props

    def amplitude_lines(self) -> list[tuple[date, int, dt.datetime, str]]:
        """Amplitude Export API lines, keys in the export's order (see the fixture).

        Each user's constant fields are serialised once into a template; per event only the
        varying values are filled in (this is what keeps generation fast).
        """
        rng = self.rng
        out: list[tuple[date, int, dt.datetime, str]] = []
        marks = [f"\x00{i}\x00" for i in range(20)]
        for u in self.users:
            c = u.country
            plat = {"ios": "iOS", "android": "Android", "web": "Web"}[u.platform]
            if u.platform == "android":
                dtype, model, manuf, brand, family = u.device[:5]
                library, os_name = "amplitude-analytics-android/1.21.3", "android"
            elif u.platform == "ios":
                dtype, model = u.device[:2]
                manuf, brand, family = "Apple", "Apple", "Apple iPhone"
                library, os_name = "amplitude-swift/1.13.2", "ios"
            else:
                browser, system = u.device[:2]
                dtype, model, manuf, brand, family = system, system, None, None, system
                library, os_name = "amplitude-ts/2.11.8", browser.lower()
            web = u.platform == "web"
            template: dict[str, Any] = {
                "server_received_time": marks[0],
                "app": 512034,
                "device_carrier": None if web else u.carrier,
                "$schema": 12,
                "city": u.city.name,
                "user_id": marks[1],
                "uuid": marks[2],
                "event_time": marks[3],
                "platform": plat,
                "os_version": marks[4],
                "amplitude_id": 903112450871 + u.n * 7919,
                "processed_time": marks[5],
                "user_creation_time": _fmt_amp(u.first_seen + dt.timedelta(milliseconds=368)),
                "version_name": marks[6],
                "ip_address": u.ip,
                "paying": marks[7],
                "dma": None,
                "group_properties": {},
                "user_properties": marks[8],
                "client_upload_time": marks[9],
                "$insert_id": marks[10],
                "event_type": marks[11],
                "library": library,
                "amplitude_attribution_ids": None,
                "device_type": dtype,
                "device_manufacturer": manuf,
                "start_version": None if web else self.app_version(u, u.first_seen),
                "location_lng": marks[12],
                "server_upload_time": marks[13],
                "event_id": marks[14],
                "location_lat": marks[15],
                "os_name": os_name,
                "amplitude_event_type": None,
                "device_brand": brand,
                "groups": {},
                "event_properties": marks[16],
                "data": {"path": "/2/httpapi", "group_first_event": {}, "group_ids": {}},
                "device_id": u.device_id,
                "language": c.language,
                "device_model": model,
                "country": c.name,
                "region": u.city.region,
                "is_attribution_event": False,
                "adid": u.adid or None,
                "session_id": marks[17],
                "device_family": family,
                "sample_rate": None,
                "idfa": u.idfa or None,
                "client_event_time": marks[18],
            }
            text = json.dumps(template, ensure_ascii=False)
            parts = [text]
            for m in marks[:19]:
                head, tail = parts[-1].split(json.dumps(m), 1)
                parts[-1:] = [head, tail]
            uid = json.dumps(u.user_id)
            first_order = min((o.created for o in u.orders), default=None)
            props_cache: dict[tuple[bool, bool], str] = {}
            for k, e in enumerate(u.events, start=1):
                if e.name == "notification_open":
                    continue
                t = e.ts
                recv = t + dt.timedelta(milliseconds=rng.randint(900, 4000))
                if e.anonymous:
                    uprops = "{}"
                else:
                    key = (u.consent_at("push", t), u.consent_at("email", t))
                    if key not in props_cache:
                        props_cache[key] = json.dumps(
                            self.user_properties(u, key), ensure_ascii=False
                        )
                    uprops = props_cache[key]
                values = (
                    f'"{_fmt_amp(recv)}"',
                    "null" if e.anonymous else uid,
                    f'"{_uuid1(recv, rng)}"',
                    f'"{_fmt_amp(t)}"',
                    f'"{self.os_version(u, t)}"',
                    f'"{_fmt_amp(recv + dt.timedelta(milliseconds=648))}"',
                    "null" if web else f'"{self.app_version(u, t)}"',
                    "true" if first_order is not None and first_order <= t else "null",
                    uprops,
                    f'"{_fmt_amp(recv - dt.timedelta(milliseconds=312))}"',
                    f'"{_uuid(rng)}"',
                    json.dumps(e.name),
                    "null" if e.lon is None else repr(e.lon),
                    f'"{_fmt_amp(recv + dt.timedelta(milliseconds=7))}"',
                    str(k),
                    "null" if e.lat is None else repr(e.lat),
                    json.dumps(e.props, ensure_ascii=False),
                    str(e.session),
                    f'"{_fmt_amp(t)}"',
                )
                line = parts[0] + "".join(v + p for v, p in zip(values, parts[1:], strict=True))
                out.append((t.date(), u.n, t, line))
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        return out

    def firebase_lines(self) -> list[tuple[dt.datetime, int, str]]:
        rng = self.rng
        out: list[tuple[dt.datetime, int, str]] = []
        prop_zone = self.shop_zone
        for u in self.users:
            if not u.firebase:
                continue
            c = u.country
            seq = 0
            first_touch = str(_epoch_ms(u.first_seen) * 1000 - rng.randint(1000, 90000))
            session_number = 1
            for e in u.events:
                if e.name == "session_start":
                    session_number += 1
                if e.name != "notification_open":
                    continue
                seq += 1
                t: dt.datetime = e.ts
                send: dt.datetime = e.props["send"]
                us = _epoch_ms(t) * 1000 + rng.randrange(1000)
                gsid = str(us // 1_000_000)
                offset = int(u.zone.utcoffset(t).total_seconds())  # type: ignore[union-attr]
                params = [
                    {"key": "firebase_event_origin", "value": {"string_value": "auto"}},
                    {"key": "ga_session_id", "value": {"int_value": gsid}},
                    {"key": "ga_session_number", "value": {"int_value": str(session_number)}},
                    {"key": "message_name", "value": {"string_value": e.props["campaign"]}},
                    {
                        "key": "message_id",
                        "value": {"string_value": f"{us}{rng.randrange(1000):03d}"},
                    },
                    {"key": "message_time", "value": {"int_value": str(_epoch_ms(send) // 1000)}},
                    {"key": "message_device_time", "value": {"int_value": gsid}},
                    {"key": "topic", "value": {"string_value": f"promo_{c.code.lower()}"}},
                    {"key": "label", "value": {"string_value": e.props["campaign"]}},
                ]
                if u.platform == "android":
                    dtype, model, _m, brand, _f = u.device[:5]
                    name = (
                        dtype.split(" ", 1)[1]
                        if dtype.startswith(("Samsung", "Google"))
                        else dtype
                    )
                    brand_name = {"samsung": "Samsung", "google": "Google"}.get(brand, brand)
                    device: dict[str, Any] = {
                        "category": "mobile",
                        "mobile_brand_name": brand_name,
                        "mobile_model_name": name,
                        "mobile_marketing_name": name,
                        "mobile_os_hardware_model": model,
                        "operating_system": "Android",
                        "operating_system_version": f"Android {self.os_version(u, t)}",
                    }
                    if u.adid:
                        device["advertising_id"] = u.adid
                    app = (
                        "com.android.vending" if c.code != "CN" else "com.xiaomi.market",
                        "1:731402659218:android:9b2d4f6a8c0e1357",
                        "ANDROID",
                        "4873015528",
                    )
                else:
                    dtype, model = u.device[:2]
                    name = dtype.replace("Apple ", "")
                    device = {
                        "category": "mobile",
                        "mobile_brand_name": "Apple",
                        "mobile_model_name": name,
                        "mobile_marketing_name": name,
                        "mobile_os_hardware_model": model,
                        "operating_system": "iOS",
                        "operating_system_version": f"iOS {self.os_version(u, t)}",
                        "vendor_id": u.device_id,
                    }
                    app = ("iTunes", "1:731402659218:ios:5e0c3b8a1f7d2e49", "IOS", "4873019652")
                device["language"] = c.lang_tag.lower()
                device["is_limited_ad_tracking"] = "No" if (u.adid or u.idfa) else "Yes"
                device["time_zone_offset_seconds"] = str(offset)
                source = {
                    "Facebook Ads": ("facebook", "cpc"),
                    "googleadwords_int": ("google", "cpc"),
                    "tiktokglobal_int": ("tiktok", "cpc"),
                    "Apple Search Ads": ("apple", "cpc"),
                    "huaweiadsglobal_int": ("huawei", "cpc"),
                }.get(u.media, ("(direct)", "(none)"))
                rec: dict[str, Any] = {
                    "event_date": _to_local(t, prop_zone).strftime("%Y%m%d"),
                    "event_timestamp": str(us),
                    "event_name": "notification_open",
                    "event_params": params,
                    "event_bundle_sequence_id": str(seq + 10),
                    "event_server_timestamp_offset": str(rng.randint(200000, 2000000)),
                    "user_id": u.user_id,
                    "user_pseudo_id": u.fb_pseudo,
                    "privacy_info": {
                        "analytics_storage": "Yes",
                        "ads_storage": "Yes" if (u.adid or u.idfa) else "No",
                        "uses_transient_token": "No",
                    },
                    "user_properties": [
                        {
                            "key": "first_open_time",
                            "value": {
                                "int_value": str(
                                    (_epoch_ms(u.first_seen) // 3600000 + 1) * 3600000
                                ),
                                "set_timestamp_micros": first_touch,
                            },
                        },
                        {
                            "key": "ga_session_id",
                            "value": {"int_value": gsid, "set_timestamp_micros": str(us)},
                        },
                        {
                            "key": "ga_session_number",
                            "value": {
                                "int_value": str(session_number),
                                "set_timestamp_micros": str(us),
                            },
                        },
                        {
                            "key": "loyalty_tier",
                            "value": {
                                "string_value": u.loyalty,
                                "set_timestamp_micros": str(us + 904000),
                            },
                        },
                    ],
                    "user_first_touch_timestamp": first_touch,
                    "device": device,
                    "geo": {
                        "city": u.city.name,
                        "country": c.name,
                        "continent": c.continent[1],
                        "region": u.city.region,
                        "sub_continent": c.continent[2],
                        "metro": "(not set)",
                    },
                    "app_info": {
                        "id": "com.lumenstore.app",
                        "version": self.app_version(u, t),
                        "install_store": app[0],
                        "firebase_app_id": app[1],
                        "install_source": app[0],
                    },
                    "traffic_source": {
                        "name": u.campaign or "(direct)",
                        "medium": source[1],
                        "source": source[0],
                    },
                    "stream_id": app[3],
                    "platform": app[2],
                    "items": [],
                    "is_active_user": True,
                    "batch_event_index": "1",
                    "batch_ordering_id": str(seq),
                    "batch_page_id": "1",
                }
                out.append((t, u.n, json.dumps(rec, ensure_ascii=False, separators=(",", ":"))))
        out.sort(key=lambda r: (r[0], r[1]))
        return out

    def appsflyer_rows(self) -> list[list[str]]:
        rng = self.rng
        rows: list[tuple[dt.datetime, int, list[str]]] = []
        for u in self.users:
            if u.platform == "web":
                continue
            c = u.country
            row = dict.fromkeys(APPSFLYER_HEADER, "")
            t = u.first_seen
            paid = u.media != "organic"
            touch = t - dt.timedelta(minutes=rng.uniform(2, 50))
            version = self.app_version(u, t)
            ios = u.platform == "ios"
            row.update(
                {
                    "Install Time": _fmt_ts(t),
                    "Event Time": _fmt_ts(t),
                    "Event Name": "install",
                    "Event Revenue Currency": "USD",
                    "Event Source": "SDK",
                    "Media Source": u.media,
                    "Region": c.continent[0],
                    "Country Code": c.code,
                    "State": u.city.state,
                    "City": u.city.name,
                    "Postal Code": u.city.zip,
                    "DMA": "None",
                    "IP": u.ip,
                    "WIFI": rng.choice(("true", "false")),
                    "Operator": u.carrier,
                    "Carrier": u.carrier,
                    "Language": c.lang_tag,
                    "AppsFlyer ID": u.af_id,
                    "Advertising ID": u.adid,
                    "IDFA": u.idfa,
                    "Customer User ID": u.user_id if rng.random() < 0.85 else "",
                    "IDFV": u.device_id if ios else "",
                    "Platform": u.platform,
                    "Device Type": u.device[0].replace("Apple ", "") if ios else u.device[1],
                    "OS Version": self.os_version(u, t),
                    "App Version": version,
                    "SDK Version": "v6.17.0",
                    "App ID": "id6446123456" if ios else "com.lumenstore.app",
                    "App Name": "Lumen Store",
                    "Bundle ID": "com.lumenstore.app",
                    "Is Retargeting": "false",
                    "Is Primary Attribution": "true",
                    "User Agent": (
                        f"LumenStore/{version.replace('.', '')}0 "
                        "CFNetwork/3826.400.120 Darwin/25.0.0"
                        if ios
                        else f"Dalvik/2.1.0 (Linux; U; Android {self.os_version(u, t)}; "
                        f"{u.device[1]} Build/AP3A.240905.015)"
                    ),
                    "Device Model": u.device[0]
                    .replace("Apple ", "")
                    .replace(" ", "")
                    .replace("(3rdgeneration)", "3")
                    if ios
                    else u.device[1],
                    "Install App Store": ""
                    if ios
                    else (
                        "com.android.vending"
                        if c.code != "CN"
                        else "com.huawei.appmarket"
                        if u.device[3] == "HUAWEI"
                        else "com.xiaomi.market"
                    ),
                    "Device Category": "phone",
                    "Conversion Type": "install",
                    "Is LAT": "false" if (u.adid or u.idfa) else "true",
                }
            )
            if ios:
                row["ATT"] = "af_authorized" if u.att else "af_denied"
            if paid:
                cid = str(_crc(u.campaign) * 1000 + 512)
                row.update(
                    {
                        "Attributed Touch Type": "click" if rng.random() < 0.9 else "impression",
                        "Attributed Touch Time": _fmt_ts(touch),
                        "Channel": u.channel,
                        "Campaign": u.campaign,
                        "Campaign ID": cid,
                        "Adset": f"{u.campaign}_AG{rng.randint(1, 3)}",
                        "Adset ID": str(int(cid) + 10),
                        "Attribution Lookback": "7d" if u.media != "googleadwords_int" else "30d",
                        "Match Type": "srn"
                        if u.media in ("Facebook Ads", "googleadwords_int", "Apple Search Ads")
                        else "id_matching",
                        "Campaign Type": "ua",
                    }
                )
                if u.media in ("Facebook Ads", "tiktokglobal_int"):
                    row["Ad"] = rng.choice(
                        (
                            "Reel_Candles_v3",
                            "UGC_mug_unboxing",
                            "Carousel_Textiles",
                            "Static_Lamp_v2",
                        )
                    )
                    row["Ad ID"] = str(int(cid) + 20)
                if not ios and c.code != "CN":
                    row["Google Play Referrer"] = (
                        "utm_source=apps.facebook.com&utm_campaign=fb4a"
                        if u.media == "Facebook Ads"
                        else f"utm_source={u.media}&utm_medium=cpc"
                    )
                    row["Google Play Click Time"] = _fmt_ts(touch + dt.timedelta(seconds=18))
            elif not ios and c.code != "CN":
                row["Google Play Referrer"] = "utm_source=google-play&utm_medium=organic"
            if not ios and c.code != "CN":
                row["Google Play Install Begin Time"] = _fmt_ts(
                    t - dt.timedelta(seconds=rng.randint(60, 600))
                )
            rows.append((t, u.n, [row[h] for h in APPSFLYER_HEADER]))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in rows]

    def shopify_rows(self) -> list[list[str]]:
        rng = self.rng
        out: list[list[str]] = []

        def ts(t: dt.datetime) -> str:
            return (
                t.replace(tzinfo=_UTC).astimezone(self.shop_zone).strftime("%Y-%m-%d %H:%M:%S %z")
            )

        for o in self.orders:
            tot = self.order_total(o)
            c, city = o.country, o.city
            email = o.email
            if rng.random() < 0.03:  # typed with capitals at checkout
                email = email[0].upper() + email[1:].replace("@", "@").title().replace(
                    email.split("@")[1].title(), email.split("@")[1].title()
                )
            created = o.created
            recent = (self.horizon - created).days < 3
            voided = o.status == "voided"
            fulfilled_at = created + dt.timedelta(hours=rng.uniform(12, 60))
            fulfilled = o.channel == "store" or (
                not voided and o.status != "refunded" and not recent
            )
            line_status = "fulfilled" if fulfilled else "pending"
            refunded = (
                tot["total"]
                if o.status == "refunded"
                else o.lines[-1][4]
                if o.status == "partially_refunded"
                else 0
            )
            name = f"{o.first_name} {o.last_name}"
            street = f"{rng.choice(city.streets)} {rng.randint(1, 180)}"
            ref = f"c{38000000000 + o.number * 17}.1"
            pay_id = "".join(
                rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
                for _ in range(25)
            )
            tags = []
            if o.channel == "app":
                tags.append("app")
            if o.user is not None and o.user.buyer == "heavy":
                tags.append("vip")
            if o.status == "partially_refunded":
                tags.append("damaged-in-transit")
            source = {"app": SHOP_APP_SOURCE, "web": "web", "store": "pos"}[o.channel]
            note_attrs = (
                f"app_user_id: {o.user.user_id}\nplatform: {o.user.platform}"
                if o.channel == "app" and o.user is not None
                else ""
            )
            disc_total = tot["discount"]
            for i, (sku, lname, _cat, qty, price, cmp) in enumerate(o.lines):
                row = dict.fromkeys(SHOPIFY_HEADER, "")
                line_disc = (
                    round(qty * price * tot["discount"] / tot["gross"]) if disc_total else 0
                )
                row.update(
                    {
                        "Name": o.name,
                        "Email": email,
                        "Created at": ts(created),
                        "Lineitem quantity": str(qty),
                        "Lineitem name": lname,
                        "Lineitem price": _money(price),
                        "Lineitem compare at price": _money(cmp) if cmp else "",
                        "Lineitem sku": sku,
                        "Lineitem requires shipping": "false" if o.channel == "store" else "true",
                        "Lineitem taxable": "true",
                        "Lineitem fulfillment status": line_status,
                        "Vendor": "Lumen Home",
                        "Lineitem discount": _money(line_disc),
                    }
                )
                if i == 0:
                    billing = {
                        "Name": name,
                        "Street": street,
                        "Address1": street,
                        "Address2": "",
                        "Company": "",
                        "City": city.name,
                        "Zip": city.zip,
                        "Province": city.province,
                        "Country": c.code,
                        "Phone": o.phone,
                    }
                    row.update(
                        {
                            "Financial Status": o.status,
                            "Paid at": "" if voided else ts(created + dt.timedelta(seconds=3)),
                            "Fulfillment Status": "fulfilled" if fulfilled else "unfulfilled",
                            "Fulfilled at": ts(fulfilled_at if o.channel != "store" else created)
                            if fulfilled
                            else "",
                            "Accepts Marketing": "yes" if o.accepts_marketing else "no",
                            "Currency": o.currency,
                            "Subtotal": _money(tot["subtotal"]),
                            "Shipping": _money(tot["shipping"]),
                            "Taxes": _money(tot["tax"]),
                            "Total": _money(tot["total"]),
                            "Discount Code": o.discount_code,
                            "Discount Amount": _money(tot["discount"]),
                            "Shipping Method": ""
                            if o.channel == "store"
                            else rng.choice(c.shipping),
                            "Notes": "Customer changed mind - refund before shipping"
                            if o.status == "refunded" and rng.random() < 0.5
                            else "",
                            "Note Attributes": note_attrs,
                            "Cancelled at": ts(created + dt.timedelta(minutes=rng.uniform(5, 300)))
                            if voided
                            else "",
                            "Payment Method": "Cash"
                            if o.channel == "store" and rng.random() < 0.3
                            else "Shopify Payments",
                            "Payment Reference": ref,
                            "Refunded Amount": _money(refunded),
                            "Outstanding Balance": "0.00",
                            "Employee": rng.choice(("Klára S.", "Ivana P.", "Marco B."))
                            if o.channel == "store"
                            else "",
                            "Location": o.store,
                            "Id": str(6598214762771 + o.number * 3170),
                            "Tags": ", ".join(tags),
                            "Risk Level": "Low",
                            "Source": source,
                            "Tax 1 Name": c.tax[0],
                            "Tax 1 Value": _money(tot["tax"]),
                            "Phone": o.phone,
                            "Billing Province Name": city.province_name if city.province else "",
                            "Shipping Province Name": city.province_name if city.province else "",
                            "Payment ID": pay_id,
                            "Payment References": ref,
                        }
                    )
                    for k, v in billing.items():
                        row[f"Billing {k}"] = v
                        row[f"Shipping {k}"] = v if o.channel != "store" else ""
                out.append([row[h] for h in SHOPIFY_HEADER])
        return out

    def users_rows(self) -> list[list[str]]:
        rows = []
        for u in self.users:
            attrs = {"loyalty_tier": u.loyalty, "favourite_category": u.favourite}
            rows.append(
                [
                    u.user_id,
                    u.email,
                    u.phone,
                    u.first[0],
                    u.last[0],
                    u.gender,
                    u.birth.isoformat(),
                    u.country.locale,
                    u.country.code,
                    u.city.region,
                    u.city.name,
                    f"{u.home[0]:.5f}",
                    f"{u.home[1]:.5f}",
                    u.country.zone,
                    u.media if u.platform != "web" else u.media,
                    _MEDIA[u.media][2]
                    if u.media in _MEDIA
                    else (
                        "cpc"
                        if u.media in ("google", "facebook")
                        else "organic"
                        if u.media == "direct"
                        else "email"
                    ),
                    u.campaign,
                    _fmt_utc(u.first_seen) if u.platform != "web" else "",
                    json.dumps(attrs, separators=(",", ":")),
                ]
            )
        return sorted(rows)

    def devices_rows(self) -> list[list[str]]:
        rng = self.rng
        rows = []
        for u in self.users:
            ever_push = any(ch == "push" and g for _t, ch, _p, g, _s in u.consents)
            if u.platform == "web" and not ever_push:
                continue
            provider, token = "", ""
            if ever_push:
                if u.platform == "ios":
                    if rng.random() < 0.08:
                        provider = "expo"
                        token = f"ExponentPushToken[{_token(rng, 22, _ALNUM)}]"
                    else:
                        provider, token = "apns", f"{rng.getrandbits(256):064x}"
                else:
                    provider = "fcm"
                    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
                    token = (
                        "".join(rng.choice(alphabet) for _ in range(22))
                        + ":APA91b"
                        + "".join(rng.choice(alphabet) for _ in range(134))
                    )
            t = u.last_active
            plat_os = {"ios": "ios", "android": "android", "web": u.device[0].lower()}
            rows.append(
                [
                    u.user_id,
                    u.device_id,
                    u.platform,
                    token,
                    provider,
                    "true" if u.consent_at("push", self.horizon) else "false",
                    plat_os[u.platform],
                    self.os_version(u, t),
                    u.device[1] if u.platform != "web" else "",
                    self.app_version(u, t) if u.platform != "web" else "",
                    _fmt_utc(t),
                ]
            )
        return sorted(rows)

    def consents_rows(self) -> list[list[str]]:
        rows: list[tuple[dt.datetime, str, list[str]]] = []
        for u in self.users:
            for t, ch, purpose, granted, src in u.consents:
                rows.append(
                    (
                        t,
                        u.user_id,
                        [u.user_id, "", ch, purpose, str(granted).lower(), _fmt_utc(t), src],
                    )
                )
            first_order = min((o.created for o in u.orders), default=None)
            if first_order is not None:
                rows.append(
                    (
                        first_order,
                        u.user_id,
                        [
                            u.user_id,
                            "",
                            "email",
                            "transactional",
                            "true",
                            _fmt_utc(first_order),
                            "checkout",
                        ],
                    )
                )
        for t, email, granted in self.newsletter:
            t = max(t, self.start)
            rows.append(
                (
                    t,
                    email,
                    [
                        "",
                        email,
                        "email",
                        "marketing",
                        str(granted).lower(),
                        _fmt_utc(t),
                        "newsletter_form",
                    ],
                )
            )
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        return [r[2] for r in rows]

    def fx_rows(self) -> list[list[str]]:
        rows = []
        for cur, series in self.fx.items():
            for d, rate in series.items():
                rows.append([d.isoformat(), cur, f"{rate:.8f}"])
        return sorted(rows)

    def ad_spend_rows(self) -> list[list[str]]:
        rng = self.rng
        installs: dict[tuple[date, str, str], int] = {}
        country_of: dict[str, _Country] = {}
        for u in self.users:
            if u.platform == "web" or u.media == "organic":
                continue
            key = (u.first_seen.date(), u.media, u.campaign)
            installs[key] = installs.get(key, 0) + 1
            country_of[u.campaign] = u.country
        campaigns = sorted({(k[1], k[2]) for k in installs})
        rows = []
        for media, camp in campaigns:
            days = sorted(k[0] for k in installs if k[1] == media and k[2] == camp)
            c = country_of[camp]
            cur = c.currency if c.code in ("CZ", "GB") else "EUR"
            d = days[0] - dt.timedelta(days=rng.randint(0, 3))
            while d <= min(days[-1] + dt.timedelta(days=rng.randint(0, 5)), self.horizon.date()):
                n = installs.get((d, media, camp), 0)
                eur = n * _CPI_EUR[media] * rng.uniform(0.8, 1.3) + rng.uniform(2, 9)
                cost = eur if cur == "EUR" else eur / self.fx[cur][d]
                rows.append([d.isoformat(), media, camp, f"{cost:.2f}", cur])
                d += dt.timedelta(days=1)
        return sorted(rows)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """CSV (UTF-8, LF); gzip-compressed, reproducibly (no name, mtime 0), for `*.gz`."""
    data = _csv_text(header, rows).encode("utf-8")
    path.write_bytes(_gzip(data) if path.suffix == ".gz" else data)


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _write_lines(path: Path, lines: Iterable[str], compress: bool) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(_gzip(data) if compress else data)


SAMPLE_END = date(2026, 11, 15)
"""The sample's last day (`generate_sample`'s default `end`)."""


def generate_sample(
    out: Path, users: int = 3000, seed: int = 7, end: date = SAMPLE_END
) -> list[Path]:
    """Write the realistic sample (see module docstring) into `out`; returns the files.

    About a year of an e-shop app's history ending on `end`: `users` app users in six locales
    plus about a sixth as many web-only shop customers. Same arguments, same bytes.
    """
    s = _Sample(users, seed, end)
    s.build()
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def path(name: str) -> Path:
        p = out / name
        files.append(p)
        return p

    _write_csv(path("fx_rates.csv"), ["date", "currency", "rate"], s.fx_rows())
    _write_csv(path("users.csv"), USERS_COLUMNS, s.users_rows())
    _write_csv(path("devices.csv"), DEVICES_COLUMNS, s.devices_rows())
    _write_lines(path("amplitude_events.jsonl.gz"), (r[3] for r in s.amplitude_lines()), True)
    _write_csv(path("appsflyer_installs.csv.gz"), APPSFLYER_HEADER, s.appsflyer_rows())
    _write_lines(path("firebase_events.jsonl"), (r[2] for r in s.firebase_lines()), False)
    _write_csv(path("shopify_orders.csv.gz"), SHOPIFY_HEADER, s.shopify_rows())
    _write_csv(path("consents.csv"), CONSENTS_COLUMNS, s.consents_rows())
    _write_csv(
        path("ad_spend.csv"), ["date", "source", "campaign", "cost", "currency"], s.ad_spend_rows()
    )
    from mcrm import demo_messages

    files += demo_messages.write(out, seed, end)
    return files


# ------------------------------------------------------------------------------------------------
# `mcrm demo`
# ------------------------------------------------------------------------------------------------

# (kind, file in data/, preset) in import order: rates before money, profiles before events,
# the app's events before the shop's orders (so orders find app users by e-mail).
IMPORT_PLAN: tuple[tuple[str, str, str | None], ...] = (
    ("fx-rates", "fx_rates.csv", None),
    ("users", "users.csv", None),
    ("devices", "devices.csv", None),
    ("events", "amplitude_events.jsonl.gz", "amplitude"),
    ("events", "appsflyer_installs.csv.gz", "appsflyer"),
    ("events", "firebase_events.jsonl", "firebase"),
    ("purchases", "shopify_orders.csv.gz", "shopify"),
    ("consents", "consents.csv", None),
    ("ad-spend", "ad_spend.csv", None),
    ("message-events", "sendgrid_events.jsonl.gz", "sendgrid"),
    ("message-events", "push_sends.csv.gz", None),
)

# A customer seen both in the app (events) and in the shop (Shopify orders): the one with
# the most orders, ties broken by user id.
PROFILE_SQL = """
SELECT p.user_id
FROM purchases p
JOIN imports i ON i.import_id = p.import_id AND i.preset = 'shopify'
WHERE p.user_id IN (SELECT user_id FROM events WHERE user_id IS NOT NULL)
GROUP BY p.user_id
ORDER BY count(DISTINCT p.order_id) DESC, p.user_id
LIMIT 1
"""


def run(ws: Workspace, generate: bool, users: int, seed: int, quiet: bool) -> int:
    """The quick start: generate `data/` if asked or missing, import every file with its
    kind and preset, then show database counts (stderr) and one merged customer profile
    (stdout). 0 when every import stayed under the reject limit, else 1. Idempotent: a second
    run inserts nothing."""
    from mcrm import api
    from mcrm.cli import render
    from mcrm.output import console

    err = console()
    data = ws.root / "data"
    if generate or not all((data / name).exists() for _k, name, _p in IMPORT_PLAN):
        if not quiet:
            err.print(f"generating the sample into {ws.rel(data)}/ ({users} users, seed {seed})")
        generate_sample(data, users=users, seed=seed)
    limit = ws.settings.imports.max_reject_rate
    code = 0
    inserted = updated = read = 0
    for kind, name, preset in IMPORT_PLAN:
        result = api.import_files(ws, kind, [f"data/{name}"], preset=preset, cwd=ws.root)
        render.import_summary(result, None, quiet, limit)
        read += result.rows_read
        inserted += sum(f.inserted for f in result.files)
        updated += sum(f.updated for f in result.files)
        if result.reject_rate > limit:
            code = 1
    if not quiet:
        if inserted == 0:
            err.print(
                f"nothing new: {read} rows read, 0 inserted (everything was imported "
                f"before; {updated} existing rows matched again)",
                markup=False,
            )
        else:
            err.print(f"imported {read} rows: {inserted} inserted, {updated} updated")
        info, table = api.db_stats(ws)
        err.print(
            "database: "
            + ", ".join(f"{r[0]} {r[1]}" for r in table.rows)
            + f" ({info['path']}, {info['size_mb']} MB)",
            markup=False,
        )
        err.print(
            f"events {info['events_from']} .. {info['events_to']}; "
            f"purchases {info['purchases_from']} .. {info['purchases_to']}",
            markup=False,
        )
    if (ws.root / "segments.yaml").exists():
        if (ws.root / "campaigns").is_dir():
            backfill(ws, quiet, seed)
        _demo_segments(ws, quiet)
        if (ws.root / "campaigns").is_dir():
            _demo_campaign(ws, quiet)
    last = list(api.run_sql(ws, "SELECT max(ts) FROM events").rows)[0][0]
    as_of = None if last is None else last.replace(microsecond=0)
    if as_of is not None:
        _demo_predict(ws, as_of, quiet)
    rows = list(api.run_sql(ws, PROFILE_SQL).rows)
    if rows:
        uid = str(rows[0][0])
        if not quiet:
            at = "" if as_of is None else f" --as-of {as_of:%Y-%m-%dT%H:%M:%S}Z"
            err.print(f"one customer across the app and the shop: mcrm users show {uid}{at}")
        # as of the sample's end, like the segments: its lifecycle, RFM and CLV of then
        render.profile(api.user_profile(ws, uid, as_of))
    if as_of is not None:
        _demo_report(ws, as_of, quiet)
    return code


def _demo_report(ws: Workspace, as_of: dt.datetime, quiet: bool) -> None:
    """Write the HTML report (every chart, no network needed) as of the sample's last event."""
    from mcrm.output import console
    from mcrm.reports.common import period
    from mcrm.reports.html import HtmlOptions, write_html

    out = ws.db_path.parent / "report.html"
    p = period(ws.settings.timezone, None, None, as_of, 90)
    result = write_html(ws, p, out, HtmlOptions())
    if not quiet:
        console().print(
            f"report with {result.charts} charts: {ws.rel(out)} (open it in a browser); same as: "
            f"mcrm report html --out {ws.rel(out)} --as-of {as_of:%Y-%m-%dT%H:%M:%S}Z",
            markup=False,
        )


def _demo_predict(ws: Workspace, as_of: dt.datetime, quiet: bool) -> None:
    """Fit the CLV models as of the sample's last event (once: a second demo finds the run),
    so the profile, the report's CLV section and the `p_alive` / `clv` predicates have a run
    to read. Data too thin to fit is said, not hidden: the report then shows its no-data
    panel."""
    from mcrm import api
    from mcrm.errors import DataError
    from mcrm.output import console

    done = list(
        api.run_sql(
            ws, f"SELECT count(*) FROM prediction_runs WHERE as_of = TIMESTAMP '{as_of}'"
        ).rows
    )[0][0]
    if done:
        return
    err = console()
    try:
        run = api.predict_clv(ws, as_of=as_of)
    except DataError as e:
        if not quiet:
            err.print(f"note: CLV not fitted: {e.render()}", markup=False)
        return
    if not quiet:
        for w in run.warnings:
            err.print(f"warning: {w}", markup=False)
        err.print(
            f"CLV fitted on {run.customers} customers ({run.repeaters} with repeat purchases): "
            f"mcrm predict clv --as-of {as_of:%Y-%m-%dT%H:%M:%S}Z",
            markup=False,
        )


DEMO_CAMPAIGN = "winback_dormant"


@dataclass
class Backfilled:
    """One occurrence `backfill` planned and sent."""

    campaign: str
    occurrence: str
    as_of: dt.datetime
    plan_id: str
    planned: int
    holdout: int
    sent: int
    snapshot: int | None  # the segment run computed at as_of, if any


def backfill(ws: Workspace, quiet: bool = True, seed: int = 7) -> list[Backfilled]:
    """The weeks since the move to mcrm, sent by mcrm (see the module docstring).

    For each scheduled campaign of campaigns/ with a goal and a holdout (what `report
    campaign` can measure: in the example workspace `winback_dormant`; `champions_ab_test` is a
    one-off after the data's end), each schedule slot after the move whose first send time is
    at or before the sample's last event (in time order, across campaigns), not yet in
    `campaign_runs`: segments are computed as of
    the first send time when the campaign is the weekly `DEMO_CAMPAIGN` (a snapshot a week),
    the slot is planned as of that instant (`plan_campaign(..., occurrence_at=slot)`, as
    `mcrm run` does), and `mcrm send --plan FILE --now T` is done at each distinct planned
    send time T of the plan, so every user gets it at their own 10:00. Slots already in
    `campaign_runs` are skipped: a second `mcrm demo` adds nothing. Returns what was done.
    """
    import random

    from mcrm import demo_messages
    from mcrm.campaigns.engine import campaign_files, load_all, plan_campaign, validate
    from mcrm.db import open_db
    from mcrm.dispatch import outbox
    from mcrm.dispatch.run import DEFAULT_GRACE, due_slots
    from mcrm.dispatch.send import send
    from mcrm.output import console
    from mcrm.segments.engine import compute
    from mcrm.yamlio import Problems

    if not campaign_files(ws.root) or validate(ws)[0]:
        return []  # _demo_campaign reports the problems
    probs = Problems()
    loaded = load_all(ws, probs)
    probs.raise_first()
    chosen = sorted(
        name
        for name, c in loaded.campaigns.items()
        if c.schedule is not None and c.goal is not None and c.holdout > 0
    )
    if not chosen:
        return []
    zone = ws.settings.timezone
    with open_db(ws, write=True) as con:
        outbox.ensure_tables(con)
        last = con.execute("SELECT max(ts) FROM events").fetchall()[0][0]
        done = {
            (r[0], r[1])
            for r in con.execute("SELECT campaign, occurrence FROM campaign_runs").fetchall()
        }
        zones = sorted(
            {zone}
            | {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT timezone FROM users WHERE timezone IS NOT NULL"
                ).fetchall()
                if _is_zone(r[0])
            }
        )
    if last is None:
        return []
    end = last.replace(microsecond=0)
    move_day = demo_messages.moved(SAMPLE_END)
    move = _to_utc(dt.datetime.combine(move_day, dt.time()), ZoneInfo(zone))
    slots = sorted(
        (first, name, slot)
        for name in chosen
        for slot, first, _last in due_slots(
            loaded.campaigns[name], end, zone, zones, DEFAULT_GRACE, since=move
        )
        if slot >= move
    )
    err = console()
    rng = random.Random(f"{seed}:backfill")
    out: list[Backfilled] = []
    for first, name, slot in slots:
        if (name, slot.isoformat() + "Z") in done:
            continue
        snap = compute(ws, None, first).run_id if name == DEMO_CAMPAIGN else None
        res = plan_campaign(ws, name, first, occurrence_at=slot)
        plan_file = ws.root / res.file
        with open_db(ws) as con:
            times = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT send_at FROM plan_rows WHERE plan_id = ? AND status = "
                    "'planned' AND send_at IS NOT NULL ORDER BY 1",
                    [res.plan_id],
                ).fetchall()
            ]
            held = int(
                con.execute(
                    "SELECT count(*) FROM plan_rows WHERE plan_id = ? AND status = 'holdout'",
                    [res.plan_id],
                ).fetchall()[0][0]
            )
        sent = 0
        for t in times:  # one `mcrm send --now T` per zone's send time, as cron would
            got = send(ws, name, plan_file=plan_file, now=max(t, first), rng=rng)
            sent += got.outcomes.get("sent", 0)
        with open_db(ws, write=True) as con:
            con.execute(
                "INSERT INTO campaign_runs VALUES (?, ?, 'planned', ?, ?) ON CONFLICT DO NOTHING",
                [name, res.occurrence, res.plan_id, first],
            )
        out.append(
            Backfilled(name, res.occurrence, first, res.plan_id, res.planned, held, sent, snap)
        )
        if not quiet:
            err.print(
                f"mcrm since the move ({move_day}): {name} {res.occurrence} planned as of "
                f"{first:%Y-%m-%dT%H:%M}Z: {res.planned} planned, {held} holdout, {sent} sent "
                f"to the outbox" + (f"; segments run {snap}" if snap is not None else ""),
                markup=False,
            )
    return out


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True


def _demo_campaign(ws: Workspace, quiet: bool) -> None:
    """Validate campaigns/ and plan the winback campaign as of the sample's last event."""
    import sys

    from mcrm import api
    from mcrm.campaigns.engine import campaign_files, plan_campaign, validate
    from mcrm.output import Format, console, write_rows

    err = console()
    errors, count = validate(ws)
    for e in errors:
        err.print(f"error: {e.render()}", markup=False)
    names = [p.stem for p in campaign_files(ws.root)]
    if errors or DEMO_CAMPAIGN not in names:
        return
    last = list(api.run_sql(ws, "SELECT max(ts) FROM events").rows)[0][0]
    res = plan_campaign(ws, DEMO_CAMPAIGN, last.replace(microsecond=0))
    if not quiet:
        err.print(
            f"{count} campaign(s) valid; plan of {DEMO_CAMPAIGN}: {res.planned} of "
            f"{res.audience} planned, rows in {res.file}; "
            f"explain one user: mcrm campaigns why {DEMO_CAMPAIGN} USER --as-of "
            f"{res.as_of:%Y-%m-%dT%H:%M:%S}Z",
            markup=False,
        )
    sys.stdout.flush()
    summary = res.summary
    summary.title = f"campaign plan: {DEMO_CAMPAIGN}"
    write_rows(summary, Format.table)
    # one planned message, rendered as it would be sent (a Czech customer's)
    from mcrm.campaigns.preview import as_text, preview

    shown = preview(ws, DEMO_CAMPAIGN, as_of=res.as_of, sample=1, locale="cs")
    sys.stdout.write("\n" + as_text(shown, None))
    sys.stdout.flush()
    if not quiet:
        err.print(
            f"more previews: mcrm campaigns preview {DEMO_CAMPAIGN} --locale zh --as-of "
            f"{res.as_of:%Y-%m-%dT%H:%M:%S}Z",
            markup=False,
        )


def _demo_segments(ws: Workspace, quiet: bool) -> None:
    """Compute every segment of segments.yaml as of the sample's last event (the sample is a
    fixed past period: as of today everyone would look churned), and show sizes and RFM."""
    import sys

    from mcrm import api
    from mcrm.output import Format, Rows, console, write_rows
    from mcrm.segments.engine import compute, rfm_segments

    last = list(api.run_sql(ws, "SELECT max(ts) FROM events").rows)[0][0]
    if last is None:
        return
    as_of = last.replace(microsecond=0)
    err = console()
    res = compute(ws, None, as_of)
    for w in res.warnings:
        err.print(f"warning: {w}", markup=False)
    if not quiet:
        err.print(
            f"segments as of {as_of:%Y-%m-%dT%H:%M:%SZ} (the sample's last event), run "
            f"{res.run_id}; same as: mcrm segments compute --as-of {as_of:%Y-%m-%dT%H:%M:%S}Z",
            markup=False,
        )
    sys.stdout.flush()
    write_rows(
        Rows(
            ["segment", "size", "description"],
            [[s.name, s.size, s.description] for s in res.sizes],
            title="segments",
        ),
        Format.table,
    )
    grid = rfm_segments(ws, as_of)
    grid.title = "RFM"
    write_rows(grid, Format.table)
