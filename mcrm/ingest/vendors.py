"""The five vendor presets (registered on import of this module).

Each preset is SQL over the raw records of one vendor export (docs/vendor-formats.md): the file
is read into a TEMP table with the Stager's readers, canonical columns are SQL expressions
giving VARCHAR, and `Stager.finish` casts, normalises, checks and rejects as for any import.

Conventions shared by the presets:

- Times without an offset (Amplitude `event_time`, AppsFlyer `Event Time`) are UTC, as the
  vendors export them; epoch values (Mixpanel s or ms, Firebase µs) become ISO strings with `Z`.
  A value that is present but unreadable stays as it is, so `finish` rejects the row naming it.
- An event without a name or a timestamp is rejected here (the events table needs both).
- Vendor-defined automatic event names become the canonical ones (`first_open` -> `install`,
  `$ae_session` -> `session_start`, `af_purchase` -> `purchase`, ...); the vendor's name is kept
  in `properties.vendor_event`. App-defined names are kept as they are.
- Country names (Amplitude, Firebase) become ISO 3166 alpha-2; a name not in the table leaves
  `country` empty and is kept in `properties.country_name` (never a reject).
- Event presets return events first, then users (Amplitude, Firebase, AppsFlyer) and devices
  (one per user and device id seen together). Events load first because their device links
  are what attach earlier device-only events to the user. A secondary kind counts as read the
  rows staged for it: one per user or (user, device), from rows that passed as events, each
  field's latest non-empty value winning.
- Shopify: one purchase per order (`Name`), order fields from the order's first row, line items
  aggregated into `items`; the customer is found by `Email`. Orders not paid yet (pending /
  authorized without `Paid at`) are skipped with a warning, not counted. Plus one consent row
  (email, marketing) per imported order with `Accepts Marketing`, at `Created at`.
- Reject lines are physical lines (CSV quoted values spanning lines are counted).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mcrm.errors import DataError
from mcrm.ingest.kinds import KINDS, OS_SQL, Kind
from mcrm.ingest.presets import Preset, register
from mcrm.ingest.readers import ReadOptions, Source, Staged, Stager, _lit, _q, csv_header
from mcrm.ingest.run import json_records

Parts = list[tuple[Kind, Staged]]

# ---------------------------------------------------------------------------------------------
# Country names -> ISO 3166-1 alpha-2 (English names as Amplitude and GA4 give them, with the
# older / longer variants seen in exports)

COUNTRIES: dict[str, str] = {
    "afghanistan": "AF",
    "albania": "AL",
    "algeria": "DZ",
    "argentina": "AR",
    "armenia": "AM",
    "australia": "AU",
    "austria": "AT",
    "azerbaijan": "AZ",
    "bahrain": "BH",
    "bangladesh": "BD",
    "belarus": "BY",
    "belgium": "BE",
    "bolivia": "BO",
    "bosnia and herzegovina": "BA",
    "bosnia & herzegovina": "BA",
    "brazil": "BR",
    "bulgaria": "BG",
    "cambodia": "KH",
    "cameroon": "CM",
    "canada": "CA",
    "chile": "CL",
    "china": "CN",
    "colombia": "CO",
    "costa rica": "CR",
    "croatia": "HR",
    "cyprus": "CY",
    "czechia": "CZ",
    "czech republic": "CZ",
    "denmark": "DK",
    "dominican republic": "DO",
    "ecuador": "EC",
    "egypt": "EG",
    "estonia": "EE",
    "ethiopia": "ET",
    "finland": "FI",
    "france": "FR",
    "georgia": "GE",
    "germany": "DE",
    "ghana": "GH",
    "greece": "GR",
    "guatemala": "GT",
    "hong kong": "HK",
    "hungary": "HU",
    "iceland": "IS",
    "india": "IN",
    "indonesia": "ID",
    "iran": "IR",
    "iraq": "IQ",
    "ireland": "IE",
    "israel": "IL",
    "italy": "IT",
    "ivory coast": "CI",
    "côte d'ivoire": "CI",
    "cote d'ivoire": "CI",
    "japan": "JP",
    "jordan": "JO",
    "kazakhstan": "KZ",
    "kenya": "KE",
    "kosovo": "XK",
    "kuwait": "KW",
    "latvia": "LV",
    "lebanon": "LB",
    "lithuania": "LT",
    "luxembourg": "LU",
    "macao": "MO",
    "macau": "MO",
    "malaysia": "MY",
    "malta": "MT",
    "mexico": "MX",
    "moldova": "MD",
    "monaco": "MC",
    "montenegro": "ME",
    "morocco": "MA",
    "myanmar": "MM",
    "myanmar (burma)": "MM",
    "nepal": "NP",
    "netherlands": "NL",
    "the netherlands": "NL",
    "new zealand": "NZ",
    "nigeria": "NG",
    "north macedonia": "MK",
    "macedonia": "MK",
    "norway": "NO",
    "oman": "OM",
    "pakistan": "PK",
    "panama": "PA",
    "paraguay": "PY",
    "peru": "PE",
    "philippines": "PH",
    "poland": "PL",
    "portugal": "PT",
    "puerto rico": "PR",
    "qatar": "QA",
    "romania": "RO",
    "russia": "RU",
    "russian federation": "RU",
    "saudi arabia": "SA",
    "serbia": "RS",
    "singapore": "SG",
    "slovakia": "SK",
    "slovenia": "SI",
    "south africa": "ZA",
    "south korea": "KR",
    "korea, republic of": "KR",
    "republic of korea": "KR",
    "spain": "ES",
    "sri lanka": "LK",
    "sweden": "SE",
    "switzerland": "CH",
    "taiwan": "TW",
    "tanzania": "TZ",
    "thailand": "TH",
    "tunisia": "TN",
    "turkey": "TR",
    "türkiye": "TR",
    "turkiye": "TR",
    "ukraine": "UA",
    "united arab emirates": "AE",
    "uae": "AE",
    "united kingdom": "GB",
    "great britain": "GB",
    "uk": "GB",
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
    "uruguay": "UY",
    "uzbekistan": "UZ",
    "venezuela": "VE",
    "vietnam": "VN",
    "viet nam": "VN",
}

_COUNTRY_MAP = "MAP {" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in COUNTRIES.items()) + "}"

AMPLITUDE_NAMES = {
    "[Amplitude] Application Installed": "install",
    "[Amplitude] Start Session": "session_start",
    "[Amplitude] Screen Viewed": "screen_view",
}
MIXPANEL_NAMES = {"$ae_first_open": "install", "$ae_session": "session_start"}
FIREBASE_NAMES = {
    "first_open": "install",
    "notification_open": "push_open",
    "view_item": "product_view",
}
APPSFLYER_NAMES = {
    "af_purchase": "purchase",
    "af_add_to_cart": "add_to_cart",
    "af_content_view": "product_view",
    "af_opened_from_push_notification": "push_open",
}

# ---------------------------------------------------------------------------------------------
# SQL helpers (all produce VARCHAR unless said otherwise)


def _path(*keys: str) -> str:
    return _lit("$" + "".join('."' + k.replace('"', '\\"') + '"' for k in keys))


def _js(doc: str, *keys: str) -> str:
    """A JSON member as text (NULL when absent or JSON null)."""
    return f"json_extract_string({doc}, {_path(*keys)})"


def _jx(doc: str, *keys: str) -> str:
    """A JSON member as JSON (NULL when absent or JSON null)."""
    e = f"json_extract({doc}, {_path(*keys)})"
    return f"(CASE WHEN json_type({e}) <> 'NULL' THEN {e} END)"


_EXTRACT_RE = re.compile(r"json_extract(_string)?\(j, '((?:[^']|'')*)'\)")


def _parse_once(select: str, raw: str, where: str) -> tuple[str, str]:
    """Rewrite `json_extract[_string](j, 'path')` calls in `select` to read from two lists
    extracted in one parse per row: DuckDB parses the JSON text again for every call, and a
    vendor row has forty of them (a 6x speed-up on Amplitude exports)."""
    paths: dict[tuple[bool, str], int] = {}

    def sub(m: re.Match[str]) -> str:
        key = (m.group(1) is not None, m.group(2))
        if key not in paths:
            paths[key] = sum(1 for k in paths if k[0] == key[0]) + 1
        return f"{'_js' if key[0] else '_jx'}[{paths[key]}]"

    rewritten = _EXTRACT_RE.sub(sub, select)
    if not paths:
        return select, f"{raw} WHERE {where}"
    extra = []
    for as_text, name in ((True, "_js"), (False, "_jx")):
        chosen = sorted((i, p) for (t, p), i in paths.items() if t == as_text)
        if chosen:
            fn = "json_extract_string" if as_text else "json_extract"
            items = ", ".join(f"'{p}'" for _, p in chosen)
            extra.append(f"{fn}(j, [{items}]) AS {name}")
    source = f"(SELECT *, {', '.join(extra)} FROM {raw} WHERE {where}) _parsed"
    return rewritten, source


def _blank(x: str) -> str:
    return f"NULLIF(trim({x}), '')"


def _first(*xs: str) -> str:
    return f"coalesce({', '.join(_blank(x) for x in xs)})" if len(xs) > 1 else _blank(xs[0])


def _utc(x: str) -> str:
    """A naive timestamp the vendor writes in UTC: give it a `Z` (offsets are kept)."""
    v = _blank(x)
    return (
        f"(CASE WHEN regexp_full_match({v}, "
        "'[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?') "
        f"THEN {v} || 'Z' ELSE {v} END)"
    )


def _epoch_ts(v: str, unit: str) -> str:
    """SQL: the timestamp of epoch value `v` (NULL when out of range or not a number)."""
    num = f"TRY_CAST({v} AS DOUBLE)"
    mult = {
        "us": "1.0",
        "s|ms": f"(CASE WHEN abs({num}) < 1e11 THEN 1000000.0 ELSE 1000.0 END)",
    }[unit]
    return f"try(make_timestamp(TRY_CAST(round({num} * {mult}) AS BIGINT)))"


def _epoch(x: str, unit: str) -> str:
    """Epoch seconds (`s`, or ms when above 1e11: `s|ms`) or µs (`us`) as ISO UTC text."""
    v = _blank(x)
    num = f"TRY_CAST({v} AS DOUBLE)"
    ts = _epoch_ts(v, unit)
    return (
        f"(CASE WHEN {num} IS NOT NULL THEN "
        f"coalesce(strftime({ts}, '%Y-%m-%d %H:%M:%S.%f') || 'Z', {v}) ELSE {v} END)"
    )


def _country(x: str) -> str:
    """ISO-2 from a code or an English name; NULL when unknown (see `_country_name`)."""
    return (
        f"(CASE WHEN regexp_full_match(trim({x}), '[A-Za-z]{{2}}') THEN upper(trim({x})) "
        f"ELSE {_COUNTRY_MAP}[lower(trim({x}))] END)"
    )


def _country_name(x: str) -> str:
    """The raw country text when `_country` could not map it (kept in properties)."""
    return (
        f"(CASE WHEN {_blank(x)} IS NOT NULL AND trim({x}) NOT IN ('(not set)', 'unknown') "
        f"AND {_country(x)} IS NULL THEN trim({x}) END)"
    )


def _not_set(x: str) -> str:
    """GA4 writes `(not set)` for unknown values."""
    return f"(CASE WHEN trim({x}) IN ('(not set)', '') THEN NULL ELSE trim({x}) END)"


def _os(x: str) -> str:
    """The OS in its one stored spelling (`ios`, `android`, ...; kinds.OS_SQL)."""
    return f"({OS_SQL.format(c=x)})"


def _platform(x: str) -> str:
    return (
        f"(CASE lower(trim({x})) WHEN 'android' THEN 'android' WHEN 'ios' THEN 'ios' "
        "WHEN 'ipados' THEN 'ios' WHEN 'web' THEN 'web' END)"
    )


def _locale(x: str) -> str:
    """`cs-cz` / `cs_CZ` -> `cs-CZ`; other tags as given."""
    v = _blank(x)
    return (
        f"(CASE WHEN regexp_full_match({v}, '[A-Za-z]{{2,3}}[-_][A-Za-z]{{2}}') THEN "
        f"lower(left({v}, strpos(replace({v}, '_', '-'), '-') - 1)) || '-' || "
        f"upper(right({v}, 2)) ELSE {v} END)"
    )


def _rename(x: str, names: dict[str, str]) -> str:
    if not names:
        return x
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in names.items())
    return f"(CASE {x} {whens} ELSE {x} END)"


def _renamed_from(x: str, names: dict[str, str]) -> str:
    keys = ", ".join(_lit(k) for k in names)
    return f"(CASE WHEN {x} IN ({keys}) THEN {x} END)"


def _obj(x: str) -> str:
    """JSON `x` if it is an object, `{"value": x}` if it is another JSON value, else NULL."""
    return (
        f"(CASE WHEN {x} IS NULL OR json_type({x}) = 'NULL' THEN NULL "
        f"WHEN json_type({x}) = 'OBJECT' THEN CAST({x} AS JSON) "
        f"ELSE json_object('value', CAST({x} AS JSON)) END)"
    )


def _with(base: str, extras: Sequence[tuple[str, str]]) -> str:
    """JSON object `base` (may be NULL) plus the non-NULL `extras` (key, SQL value); NULL when
    nothing is left."""
    if not extras:
        return f"CAST({base} AS VARCHAR)"
    pairs = ", ".join(f"{_lit(k)}, {v}" for k, v in extras)
    none = " AND ".join(f"({v}) IS NULL" for _, v in extras)
    return (
        f"(CASE WHEN {base} IS NULL AND {none} THEN NULL ELSE CAST(json_merge_patch("
        f"coalesce({base}, CAST('{{}}' AS JSON)), json_object({pairs})) AS VARCHAR) END)"
    )


def _without(obj: str, keys: Sequence[str]) -> str:
    """JSON object `obj` minus `keys` (NULL when empty or not an object)."""
    drop = ", ".join(_lit(k) for k in keys)
    m = (
        f"to_json(map_from_entries(list_filter(map_entries(CAST({obj} AS MAP(VARCHAR, JSON))), "
        f"lambda e: e.key NOT IN ({drop}))))"
    )
    return f"(CASE WHEN json_type({obj}) = 'OBJECT' THEN NULLIF(CAST({m} AS VARCHAR), '{{}}') END)"


# ---------------------------------------------------------------------------------------------
# Staging helpers


def _add_line(stager: Stager, table: str, first: int) -> None:
    """`_line` = the record's line: `first` for the first record (1 for JSON lines, 2 for CSV
    after the header; CSV lines are then shifted past structurally rejected ones)."""
    base = stager.base_rowid(table)
    stager.con.execute(f"ALTER TABLE {table} ADD COLUMN _line BIGINT")
    stager.con.execute(f"UPDATE {table} SET _line = rowid - {base} + {first}")


def _prereject(
    stager: Stager, src: Source, table: str, reason: str, where: str, raw: str = "NULL"
) -> int:
    """Reject rows of `table` (matching `where`) for which SQL `reason` is not NULL; they are
    marked in `_miss` so the caller finishes `... AND _miss IS NULL`."""
    con = stager.con
    con.execute(f"ALTER TABLE {table} ADD COLUMN _miss VARCHAR")
    con.execute(f"UPDATE {table} SET _miss = {reason} WHERE {where}")
    base = stager.base_rowid(table)
    bad = con.execute(
        f"SELECT rowid - {base}, _line, _miss, {raw} FROM {table} "
        f"WHERE _miss IS NOT NULL ORDER BY _line"
    ).fetchall()
    if bad:
        lines = stager._lines_for([int(b[0]) for b in bad], [b[1] for b in bad], src)
        con.executemany(
            "INSERT INTO import_rejects VALUES (?, ?, ?, ?, ?, ?)",
            [
                [stager.import_id, src.display, line, b[2].split(":", 1)[0], b[2], b[3]]
                for b, line in zip(bad, lines, strict=True)
            ],
        )
    return len(bad)


def _need_event(name: str, ts: str, who: str) -> str:
    """Reject reason for an event missing what the events table requires."""
    return (
        f"CASE WHEN {_blank(name)} IS NULL THEN 'name: the event name is empty' "
        f"WHEN {_blank(ts)} IS NULL THEN 'timestamp: the event time is empty' "
        f"WHEN {who} THEN 'user_id: no user id and no device id' END"
    )


def _json_source(stager: Stager, src: Source) -> tuple[str, int]:
    """JSON lines / array / Parquet as a table (j, _ok, _line); broken lines rejected."""
    if src.fmt == "parquet":
        import duckdb

        table = stager._name("pqj")
        try:
            stager.con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT CAST(to_json(t) AS VARCHAR) AS j, "
                f"true AS _ok FROM read_parquet({_lit(str(src.path))}) t"
            )
        except duckdb.Error as e:
            raise DataError(
                f"cannot read {src.display} as Parquet: {str(e).splitlines()[0]}"
            ) from None
        _add_line(stager, table, 1)
        return table, 0
    table, bad = json_records(stager, src)
    _add_line(stager, table, 1)
    return table, bad


def _csv_source(
    stager: Stager, src: Source, opts: ReadOptions, required: Sequence[str], vendor: str
) -> tuple[str, set[str], int]:
    """A CSV as VARCHAR columns plus `_line`; the required columns must be in the header."""
    names, delim = csv_header(src, opts)
    missing = [n for n in required if n not in names]
    if missing:
        raise DataError(
            f"{src.display} is not a {vendor} export: column "
            f"{', '.join(repr(m) for m in missing)} missing; found: {', '.join(names)}",
            hint=f"the {vendor} preset reads the columns by name (docs/vendor-formats.md)",
        )
    table = stager.read_csv_varchar(src, opts, names, delim)
    structural = stager.last_rejected
    _add_line(stager, table, 2)
    # quoted values may span lines (Shopify's `Note Attributes` always do): count them in
    row = f"concat_ws(chr(1), {', '.join(_q(n) for n in names)})"
    newlines = f"length({row}) - length(replace({row}, chr(10), ''))"
    stager.con.execute(
        f"""UPDATE {table} SET _line = {table}._line + x.before FROM (
            SELECT rowid AS r, coalesce(sum({newlines}) OVER (ORDER BY rowid
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
            FROM {table}) x
        WHERE {table}.rowid = x.r AND x.before > 0"""
    )
    return table, set(names), structural


def _col(names: set[str], name: str) -> str:
    return _q(name) if name in names else "NULL::VARCHAR"


def _drop(stager: Stager, *tables: str) -> None:
    for t in tables:
        stager.con.execute(f"DROP TABLE IF EXISTS {t}")


def _latest(
    stager: Stager, raw: str, where: str, keys: dict[str, str], ts: str, fields: dict[str, str]
) -> str:
    """One row per `keys` (all non-empty): each field's latest non-empty value (by `ts`, then
    line), with `_fs`/`_ls` (first/last `ts`, ISO UTC) and `_line` (the latest record's)."""
    table = stager._name("agg")
    order = f"(TRY_CAST({ts} AS TIMESTAMPTZ), _line)"
    aggs = ", ".join(
        f"max_by({expr}, {order}) FILTER (WHERE {_blank(expr)} IS NOT NULL) AS {_q(name)}"
        for name, expr in fields.items()
    )
    key_cols = ", ".join(f"{_blank(expr)} AS {name}" for name, expr in keys.items())
    present = " AND ".join(f"{_blank(expr)} IS NOT NULL" for expr in keys.values())
    iso = "strftime(timezone('UTC', {}), '%Y-%m-%d %H:%M:%S.%f') || 'Z'"
    stager.con.execute(
        f"""CREATE TEMP TABLE {table} AS SELECT * FROM (
            SELECT {key_cols}, {aggs},
                {iso.format(f"min(TRY_CAST({ts} AS TIMESTAMPTZ))")} AS _fs,
                {iso.format(f"max(TRY_CAST({ts} AS TIMESTAMPTZ))")} AS _ls,
                max_by(_line, {order}) AS _line
            FROM {raw} WHERE {where} AND {present} GROUP BY ALL
        ) ORDER BY _line"""
    )
    return table


def _users(
    stager: Stager,
    src: Source,
    opts: ReadOptions,
    raw: str,
    where: str,
    uid: str,
    ts: str,
    fields: dict[str, str],
) -> Staged:
    """The users a file names (one row each, see `_latest`)."""
    table = _latest(stager, raw, where, {"_uid": uid}, ts, fields)
    exprs = {"user_id": "_uid", "first_seen": "_fs", "last_seen": "_ls"}
    exprs.update({name: _q(name) for name in fields})
    staged = stager.finish(KINDS["users"], table, exprs, {}, opts, src)
    _drop(stager, table)
    return staged


def _devices(
    stager: Stager,
    src: Source,
    opts: ReadOptions,
    raw: str,
    where: str,
    uid: str,
    device: str,
    ts: str,
    fields: dict[str, str],
) -> Staged:
    """One device row per (user, device id) the file shows together; last_seen = latest ts."""
    table = _latest(stager, raw, where, {"_uid": uid, "_dev": device}, ts, fields)
    exprs = {"user_id": "_uid", "device_id": "_dev", "last_seen": "_ls"}
    exprs.update({name: _q(name) for name in fields})
    staged = stager.finish(KINDS["devices"], table, exprs, {}, opts, src)
    _drop(stager, table)
    return staged


def _device_fields(events: dict[str, str]) -> dict[str, str]:
    return {k: events[k] for k in ("platform", "os", "os_version", "device_model", "app_version")}


def _event_parts(
    stager: Stager,
    src: Source,
    opts: ReadOptions,
    raw: str,
    where: str,
    events: dict[str, str],
    users: dict[str, str] | None,
    devices: dict[str, str],
    rejected_before: int,
    owner: str | None = None,
) -> Parts:
    """Events, plus the users and (user, device) pairs they show, from one raw table.

    Every expression is computed once into a prepared table (`finish` repeats a column's
    expression several times, and vendor expressions are large). Users and devices come only
    from rows that passed as events; `owner` (SQL over `raw`) names their user when it is not
    the event's user_id (AppsFlyer: the install's Customer User ID)."""
    cols = dict(events)
    cols["_owner"] = owner or events["user_id"]
    cols.update({f"u_{k}": v for k, v in (users or {}).items()})
    cols.update({f"d_{k}": v for k, v in devices.items()})
    prep = stager._name("prep")
    select = ", ".join(f"{v} AS {_q(k)}" for k, v in cols.items())
    select, source = _parse_once(select, raw, where)
    stager.con.execute(
        f"CREATE TEMP TABLE {prep} AS SELECT _line, {select} FROM {source} ORDER BY _line"
    )
    _drop(stager, raw)
    staged = stager.finish(KINDS["events"], prep, {k: _q(k) for k in events}, {}, opts, src)
    staged.rows_read += rejected_before
    staged.rejected += rejected_before
    passed = f"_line IN (SELECT _line FROM {staged.table})"
    uid, dev, ts = _q("_owner"), _q("anonymous_id"), _q("timestamp")
    # events load first: their device links are what attaches earlier device-only events
    # (and this file's pre-login rows) to the user
    parts: Parts = [(KINDS["events"], staged)]
    if users is not None:
        fields = {k: _q(f"u_{k}") for k in users}
        parts.append((KINDS["users"], _users(stager, src, opts, prep, passed, uid, ts, fields)))
    fields = {k: _q(f"d_{k}") for k in devices}
    staged_devices = _devices(stager, src, opts, prep, passed, uid, dev, ts, fields)
    parts.append((KINDS["devices"], staged_devices))
    _drop(stager, prep)
    return parts


# ---------------------------------------------------------------------------------------------
# Amplitude


def stage_amplitude(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    raw, bad = _json_source(stager, src)
    j = "j"
    name = _js(j, "event_type")
    ts = _utc(_js(j, "event_time"))
    props = _jx(j, "event_properties")

    def ep(key: str) -> str:
        return _js(j, "event_properties", key)

    def up(key: str) -> str:
        return _js(j, "user_properties", key)

    price, qty = _blank(ep("$price")), _blank(ep("$quantity"))
    product = (
        f"(CASE WHEN TRY_CAST({price} AS DECIMAL(18,3)) IS NULL THEN {price} "
        f"WHEN TRY_CAST({qty} AS DECIMAL(18,3)) IS NULL THEN {qty} ELSE CAST("
        f"TRY_CAST({price} AS DECIMAL(18,3)) * TRY_CAST({qty} AS DECIMAL(18,3)) AS VARCHAR) END)"
    )
    revenue = f"coalesce({_blank(ep('$revenue'))}, {product})"
    events = {
        "event_id": _first(_js(j, "$insert_id"), _js(j, "uuid")),
        "user_id": _blank(_js(j, "user_id")),
        "anonymous_id": _blank(_js(j, "device_id")),
        "name": _rename(name, AMPLITUDE_NAMES),
        "timestamp": ts,
        "session_id": f"NULLIF({_blank(_js(j, 'session_id'))}, '-1')",
        "platform": _platform(_js(j, "platform")),
        "os": _os(_js(j, "os_name")),
        "os_version": _js(j, "os_version"),
        "app_version": _js(j, "version_name"),
        "device_model": _js(j, "device_model"),
        "screen": _first(ep("[Amplitude] Screen Name"), ep("screen")),
        "country": _country(_js(j, "country")),
        "region": _js(j, "region"),
        "city": _js(j, "city"),
        "latitude": _js(j, "location_lat"),
        "longitude": _js(j, "location_lng"),
        "utm_source": _first(ep("utm_source"), up("utm_source")),
        "utm_medium": _first(ep("utm_medium"), up("utm_medium")),
        "utm_campaign": _first(ep("utm_campaign"), up("utm_campaign")),
        "properties": _with(
            _obj(props),
            [
                ("vendor_event", _renamed_from(name, AMPLITUDE_NAMES)),
                ("country_name", _country_name(_js(j, "country"))),
            ],
        ),
        "revenue": revenue,
        "currency": f"(CASE WHEN {revenue} IS NOT NULL "
        f"THEN {_first(ep('$currency'), ep('currency'))} ELSE {_blank(ep('$currency'))} END)",
    }
    who = f"{events['user_id']} IS NULL AND {events['anonymous_id']} IS NULL"
    missing = _prereject(
        stager, src, raw, _need_event(name, _js(j, "event_time"), who), "_ok", "left(j, 2000)"
    )
    mapped = [
        "email",
        "phone",
        "first_name",
        "last_name",
        "gender",
        "birth_date",
        "locale",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    ]
    fields = {
        "email": up("email"),
        "phone": up("phone"),
        "first_name": up("first_name"),
        "last_name": up("last_name"),
        "gender": up("gender"),
        "birth_date": up("birth_date"),
        "locale": _locale(up("locale")),
        "country": _country(_js(j, "country")),
        "region": _js(j, "region"),
        "city": _js(j, "city"),
        "os": _os(_js(j, "os_name")),
        "os_version": _js(j, "os_version"),
        "device_model": _js(j, "device_model"),
        "app_version": _js(j, "version_name"),
        "acq_source": up("utm_source"),
        "acq_medium": up("utm_medium"),
        "acq_campaign": up("utm_campaign"),
        "install_time": _utc(_js(j, "user_creation_time")),
        "attributes": _without(_jx(j, "user_properties"), mapped),
        "anonymous_id": _blank(_js(j, "device_id")),
    }
    devs = _device_fields(events) | {"push_enabled": up("push_enabled")}
    ok = "_ok AND _miss IS NULL"
    return _event_parts(stager, src, opts, raw, ok, events, fields, devs, bad + missing)


# ---------------------------------------------------------------------------------------------
# Mixpanel

MIXPANEL_MAPPED = [
    "time",
    "distinct_id",
    "$device_id",
    "$user_id",
    "$insert_id",
    "$os",
    "$os_version",
    "$model",
    "$app_version_string",
    "$city",
    "$region",
    "mp_country_code",
    "$latitude",
    "$longitude",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "revenue",
    "currency",
    "screen_name",
    "$screen_name",
    "mp_processing_time_ms",
    "$mp_api_timestamp_ms",
    "$mp_api_endpoint",
]


def stage_mixpanel(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    raw, bad = _json_source(stager, src)
    j = "j"

    def p(key: str) -> str:
        return _js(j, "properties", key)

    name = _js(j, "event")
    distinct = _blank(p("distinct_id"))
    device = _first(
        p("$device_id"),
        f"(CASE WHEN starts_with({distinct}, '$device:') THEN substr({distinct}, 9) END)",
    )
    user = (
        f"coalesce({_blank(p('$user_id'))}, CASE WHEN starts_with({distinct}, '$device:') "
        f"OR {distinct} = {_blank(p('$device_id'))} THEN NULL ELSE {distinct} END)"
    )
    url_path = f"NULLIF(regexp_extract({p('$current_url')}, '^[a-z]+://[^/?#]*([^?#]*)', 1), '')"
    revenue = _blank(p("revenue"))
    events = {
        "event_id": _blank(p("$insert_id")),
        "user_id": user,
        "anonymous_id": device,
        "name": _rename(name, MIXPANEL_NAMES),
        "timestamp": _epoch(p("time"), "s|ms"),
        "platform": (
            f"(CASE WHEN lower({p('mp_lib')}) = 'web' THEN 'web' ELSE {_platform(p('$os'))} END)"
        ),
        "os": _os(p("$os")),
        "os_version": p("$os_version"),
        "app_version": p("$app_version_string"),
        "device_model": p("$model"),
        "screen": f"coalesce({_first(p('screen_name'), p('$screen_name'))}, {url_path})",
        "country": _country(p("mp_country_code")),
        "region": p("$region"),
        "city": p("$city"),
        "latitude": p("$latitude"),
        "longitude": p("$longitude"),
        "utm_source": p("utm_source"),
        "utm_medium": p("utm_medium"),
        "utm_campaign": p("utm_campaign"),
        "properties": _with(
            f"CAST({_without(_jx(j, 'properties'), MIXPANEL_MAPPED)} AS JSON)",
            [
                ("vendor_event", _renamed_from(name, MIXPANEL_NAMES)),
                ("country_name", _country_name(p("mp_country_code"))),
            ],
        ),
        "revenue": revenue,
        "currency": f"(CASE WHEN {revenue} IS NOT NULL THEN {p('currency')} END)",
    }
    who = f"{user} IS NULL AND {device} IS NULL"
    missing = _prereject(
        stager, src, raw, _need_event(name, p("time"), who), "_ok", "left(j, 2000)"
    )
    devs = _device_fields(events)
    ok = "_ok AND _miss IS NULL"
    return _event_parts(stager, src, opts, raw, ok, events, None, devs, bad + missing)


# ---------------------------------------------------------------------------------------------
# Firebase / GA4 BigQuery export


def _ga_params(arr: str, drop: Sequence[str] = ()) -> str:
    """A GA4 `[{key, value: {string_value|int_value|float_value|double_value}}]` array as
    one JSON object text (int strings become numbers); NULL when absent or empty."""
    value = (
        "CASE WHEN json_extract_string(e, '$.value.string_value') IS NOT NULL "
        "THEN to_json(json_extract_string(e, '$.value.string_value')) "
        "WHEN regexp_full_match(json_extract_string(e, '$.value.int_value'), '-?[0-9]{1,18}') "
        "THEN json(json_extract_string(e, '$.value.int_value')) "
        "WHEN json_extract_string(e, '$.value.int_value') IS NOT NULL "
        "THEN to_json(json_extract_string(e, '$.value.int_value')) "
        "WHEN json_type(json_extract(e, '$.value.double_value')) IN ('DOUBLE', 'BIGINT', "
        "'UBIGINT') THEN json_extract(e, '$.value.double_value') "
        "WHEN json_type(json_extract(e, '$.value.float_value')) IN ('DOUBLE', 'BIGINT', "
        "'UBIGINT') THEN json_extract(e, '$.value.float_value') "
        "ELSE CAST('null' AS JSON) END"
    )
    keep = ""
    if drop:
        keep = (
            "list_filter(_L, lambda e: coalesce(json_extract_string(e, '$.key'), '') NOT IN "
            f"({', '.join(_lit(d) for d in drop)}))"
        )
    lst = f"CAST({arr} AS JSON[])"
    lst = keep.replace("_L", lst) if keep else lst
    body = (
        f"array_to_string(list_transform({lst}, lambda e: "
        f"CAST(to_json(coalesce(json_extract_string(e, '$.key'), '')) AS VARCHAR) || ':' || "
        f"CAST({value} AS VARCHAR)), ',')"
    )
    return (
        f"(CASE WHEN json_type({arr}) = 'ARRAY' AND json_array_length({arr}) > 0 "
        f"THEN NULLIF('{{' || {body} || '}}', '{{}}') END)"
    )


def _ga_param(arr: str, key: str) -> str:
    """One GA4 param's value as text."""
    el = (
        f"list_filter(CAST({arr} AS JSON[]), "
        f"lambda e: json_extract_string(e, '$.key') = {_lit(key)})[1]"
    )
    return (
        f"(CASE WHEN json_type({arr}) = 'ARRAY' THEN coalesce("
        f"json_extract_string({el}, '$.value.string_value'), "
        f"json_extract_string({el}, '$.value.int_value'), "
        f"json_extract_string({el}, '$.value.double_value'), "
        f"json_extract_string({el}, '$.value.float_value')) END)"
    )


FIREBASE_PURCHASES = ("purchase", "in_app_purchase", "ecommerce_purchase")


def stage_firebase(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    raw, bad = _json_source(stager, src)
    j = "j"
    con = stager.con
    # the params array once per row (it is read by several columns)
    con.execute(f"ALTER TABLE {raw} ADD COLUMN _p JSON")
    con.execute(f"UPDATE {raw} SET _p = json_extract(j, '$.event_params') WHERE _ok")

    def prm(key: str) -> str:
        return _ga_param("_p", key)

    name = _js(j, "event_name")
    ts_raw = _js(j, "event_timestamp")
    items = _jx(j, "items")
    ecommerce = _jx(j, "ecommerce")
    geo_country = _js(j, "geo", "country")
    is_purchase = f"{name} IN ({', '.join(_lit(n) for n in FIREBASE_PURCHASES)})"
    os_version = _not_set(_js(j, "device", "operating_system_version"))
    pseudo = _blank(_js(j, "user_pseudo_id"))
    session = prm("ga_session_id")
    events = {
        "user_id": _blank(_js(j, "user_id")),
        "anonymous_id": pseudo,
        "name": _rename(name, FIREBASE_NAMES),
        "timestamp": _epoch(ts_raw, "us"),
        "session_id": f"(CASE WHEN {session} IS NOT NULL THEN {pseudo} || ':' || {session} END)",
        "platform": _platform(_js(j, "platform")),
        "os": _os(_not_set(_js(j, "device", "operating_system"))),
        "os_version": f"regexp_replace({os_version}, '^[A-Za-z][A-Za-z ]*\\s+([0-9])', '\\1')",
        "app_version": _js(j, "app_info", "version"),
        "device_model": _not_set(_js(j, "device", "mobile_model_name")),
        "screen": prm("firebase_screen"),
        "country": _country(_not_set(geo_country)),
        "region": _not_set(_js(j, "geo", "region")),
        "city": _not_set(_js(j, "geo", "city")),
        "latitude": prm("latitude"),
        "longitude": prm("longitude"),
        "utm_source": _first(_js(j, "collected_traffic_source", "manual_source"), prm("source")),
        "utm_medium": _first(_js(j, "collected_traffic_source", "manual_medium"), prm("medium")),
        "utm_campaign": _first(
            _js(j, "collected_traffic_source", "manual_campaign_name"), prm("campaign")
        ),
        "properties": _with(
            f"CAST({_ga_params('_p')} AS JSON)",
            [
                ("items", f"(CASE WHEN json_array_length({items}) > 0 THEN {items} END)"),
                ("ecommerce", ecommerce),
                ("vendor_event", _renamed_from(name, FIREBASE_NAMES)),
                ("country_name", _country_name(geo_country)),
            ],
        ),
        "revenue": f"(CASE WHEN {is_purchase} THEN {prm('value')} END)",
        "currency": f"(CASE WHEN {is_purchase} THEN {prm('currency')} END)",
    }
    who = f"{events['user_id']} IS NULL AND {pseudo} IS NULL"
    missing = _prereject(stager, src, raw, _need_event(name, ts_raw, who), "_ok", "left(j, 2000)")

    traffic = {k: _not_set(_js(j, "traffic_source", k)) for k in ("source", "medium", "name")}
    fields = {
        "locale": _locale(_not_set(_js(j, "device", "language"))),
        "country": events["country"],
        "region": events["region"],
        "city": events["city"],
        "os": events["os"],
        "os_version": events["os_version"],
        "device_model": events["device_model"],
        "app_version": events["app_version"],
        "acq_source": traffic["source"],
        "acq_medium": traffic["medium"],
        "acq_campaign": traffic["name"],
        "install_time": _epoch(_js(j, "user_first_touch_timestamp"), "us"),
        "attributes": _ga_params(
            "json_extract(j, '$.user_properties')",
            ("ga_session_id", "ga_session_number", "first_open_time"),
        ),
        "anonymous_id": pseudo,
    }
    devs = _device_fields(events)
    ok = "_ok AND _miss IS NULL"
    return _event_parts(stager, src, opts, raw, ok, events, fields, devs, bad + missing)


# ---------------------------------------------------------------------------------------------
# AppsFlyer raw data (installs and in-app events share one header)


def stage_appsflyer(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    required = ("Event Name", "Event Time", "AppsFlyer ID")
    raw, names, structural = _csv_source(stager, src, opts, required, "AppsFlyer raw-data")

    def c(name: str) -> str:
        return _col(names, name)

    ev = _blank(c("Event Value"))
    ev_ok = f"({ev} IS NOT NULL AND {ev} <> 'null' AND json_valid({ev}))"

    def val(key: str) -> str:
        obj = f"json_type(CAST({ev} AS JSON)) = 'OBJECT'"
        return f"(CASE WHEN {ev_ok} AND {obj} THEN {_js(ev, key)} END)"

    name = c("Event Name")
    revenue = _blank(c("Event Revenue"))
    events = {
        "user_id": _blank(c("Customer User ID")),
        "anonymous_id": _blank(c("AppsFlyer ID")),
        "name": _rename(_blank(name), APPSFLYER_NAMES),
        "timestamp": _utc(c("Event Time")),
        "platform": _platform(c("Platform")),
        "os": _os(c("Platform")),
        "os_version": c("OS Version"),
        "app_version": c("App Version"),
        "device_model": _first(c("Device Model"), c("Device Type")),
        "country": _country(c("Country Code")),
        "region": _blank(c("State")),
        "city": _blank(c("City")),
        "latitude": val("af_lat"),
        "longitude": val("af_long"),
        "utm_source": _blank(c("Media Source")),
        "utm_medium": _blank(c("Channel")),
        "utm_campaign": _blank(c("Campaign")),
        "properties": (
            f"(CASE WHEN {ev} IS NOT NULL AND {ev} <> 'null' AND NOT json_valid({ev}) THEN {ev} "
            + "ELSE "
            + _with(
                f"(CASE WHEN {ev_ok} THEN {_obj(f'CAST({ev} AS JSON)')} END)",
                [("vendor_event", _renamed_from(_blank(name), APPSFLYER_NAMES))],
            )
            + " END)"
        ),
        "revenue": revenue,
        "currency": f"(CASE WHEN {revenue} IS NOT NULL THEN {c('Event Revenue Currency')} END)",
    }
    who = f"{events['user_id']} IS NULL AND {events['anonymous_id']} IS NULL"
    missing = _prereject(stager, src, raw, _need_event(name, c("Event Time"), who), "TRUE")

    ids = {
        "appsflyer_id": c("AppsFlyer ID"),
        "advertising_id": c("Advertising ID"),
        "idfa": c("IDFA"),
        "idfv": c("IDFV"),
        "att": c("ATT"),
    }
    attrs = ", ".join(f"{_lit(k)}, {_blank(v)}" for k, v in ids.items())
    fields = {
        # not `State`: a subdivision code where the app SDKs give a name
        "country": events["country"],
        "city": events["city"],
        "locale": _locale(c("Language")),
        "os": events["os"],
        "os_version": events["os_version"],
        "device_model": events["device_model"],
        "app_version": events["app_version"],
        "acq_source": events["utm_source"],
        "acq_medium": events["utm_medium"],
        "acq_campaign": events["utm_campaign"],
        "install_time": _utc(c("Install Time")),
        "attributes": (
            f"NULLIF(CAST(json_merge_patch('{{}}', json_object({attrs})) AS VARCHAR), '{{}}')"
        ),
        "anonymous_id": events["anonymous_id"],
    }
    # the user of an install is known from any of its rows (Customer User ID is often set
    # only after login, so the install row itself has none)
    con = stager.con
    con.execute(f"ALTER TABLE {raw} ADD COLUMN _cuid VARCHAR")
    if "Customer User ID" in names:
        cuid, afid = _q("Customer User ID"), _q("AppsFlyer ID")
        con.execute(
            f"""UPDATE {raw} SET _cuid = x.cuid FROM (
                SELECT {afid} AS afid, max_by({cuid}, _line) AS cuid FROM {raw}
                WHERE _miss IS NULL AND {_blank(cuid)} IS NOT NULL GROUP BY 1) x
            WHERE {raw}.{afid} = x.afid"""
        )
    devs = _device_fields(events)
    rejected = structural + missing
    return _event_parts(
        stager, src, opts, raw, "_miss IS NULL", events, fields, devs, rejected, "_cuid"
    )


# ---------------------------------------------------------------------------------------------
# Shopify orders export (one row per line item)


def stage_shopify(stager: Stager, src: Source, opts: ReadOptions) -> Parts:
    required = ("Name", "Created at", "Currency", "Total")
    raw, names, structural = _csv_source(stager, src, opts, required, "Shopify orders")
    con = stager.con

    def c(name: str) -> str:
        return _col(names, name)

    def order_level(name: str) -> str:
        """The order's value: its first row that has one (later rows leave it blank)."""
        v = c(name)
        return f"min_by({v}, _line) FILTER (WHERE {_blank(v)} IS NOT NULL)"

    qty, price = _blank(c("Lineitem quantity")), _blank(c("Lineitem price"))
    num = "'-?[0-9]+(\\.[0-9]+)?'"
    item = (
        f"json_object('sku', {_blank(c('Lineitem sku'))}, 'name', {_blank(c('Lineitem name'))}, "
        "'category', NULL, "
        f"'quantity', CASE WHEN regexp_full_match({qty}, {num}) THEN json({qty}) END, "
        f"'price', CASE WHEN regexp_full_match({price}, {num}) THEN json({price}) END)"
    )
    has_item = f"coalesce({_blank(c('Lineitem name'))}, {_blank(c('Lineitem sku'))}) IS NOT NULL"
    item_err = (
        f"CASE WHEN {qty} IS NOT NULL AND NOT regexp_full_match({qty}, {num}) "
        f"THEN 'items: cannot read Lineitem quantity ''' || {qty} || ''' as a number' "
        f"WHEN {price} IS NOT NULL AND NOT regexp_full_match({price}, {num}) "
        f"THEN 'items: cannot read Lineitem price ''' || {price} || ''' as a number' END"
    )
    orders = stager._name("orders")
    order_cols = [
        "Email",
        "Financial Status",
        "Paid at",
        "Accepts Marketing",
        "Currency",
        "Total",
        "Discount Code",
        "Created at",
        "Cancelled at",
        "Source",
    ]
    con.execute(
        f"""CREATE TEMP TABLE {orders} AS SELECT * FROM (
            SELECT {_q("Name")} AS _order,
                {", ".join(f"{order_level(n)} AS {_q(n)}" for n in order_cols)},
                CAST(to_json(list({item} ORDER BY _line) FILTER (WHERE {has_item}))
                    AS VARCHAR) AS _items,
                min_by({item_err}, _line) FILTER (WHERE ({item_err}) IS NOT NULL) AS _item_err,
                coalesce(min(_line) FILTER (WHERE ({item_err}) IS NOT NULL), min(_line)) AS _line
            FROM {raw} WHERE {_blank(_q("Name"))} IS NOT NULL GROUP BY {_q("Name")}
        ) ORDER BY _line"""
    )
    unnamed = con.execute(
        f"SELECT _line FROM {raw} WHERE {_blank(_q('Name'))} IS NULL ORDER BY _line"
    ).fetchall()
    _drop(stager, raw)
    fs = f"lower(trim({_q('Financial Status')}))"
    paid_at = _blank(_q("Paid at"))
    unpaid = (
        f"coalesce({fs} IN ('pending', 'authorized', 'partially_paid') AND {paid_at} IS NULL, "
        "false)"
    )
    status = (
        f"(CASE WHEN {fs} = 'refunded' THEN 'refunded' "
        f"WHEN {fs} = 'voided' OR {_blank(_q('Cancelled at'))} IS NOT NULL THEN 'cancelled' "
        f"WHEN {fs} IN ('paid', 'partially_refunded', 'pending', 'authorized', 'partially_paid') "
        f"THEN 'paid' ELSE {fs} END)"
    )
    source = f"lower(trim({_q('Source')}))"
    channel = (
        f"(CASE WHEN {source} IS NULL THEN NULL WHEN {source} = 'pos' THEN 'store' "
        f"WHEN regexp_full_match({source}, '[0-9]+') OR {source} IN ('iphone', 'android') "
        "THEN 'app' ELSE 'web' END)"
    )
    skipped = con.execute(f"SELECT _order FROM {orders} WHERE {unpaid} ORDER BY _line").fetchall()
    need = (
        f"CASE WHEN {_blank(_q('Created at'))} IS NULL THEN 'timestamp: Created at is empty' "
        f"WHEN {_blank(_q('Total'))} IS NULL THEN 'amount: Total is empty' "
        f"WHEN {_blank(_q('Currency'))} IS NULL THEN 'currency: Currency is empty' "
        "ELSE _item_err END"
    )
    missing = _prereject(stager, src, orders, need, "TRUE")
    exprs = {
        "order_id": "_order",
        "email": _q("Email"),
        "timestamp": _q("Created at"),
        "amount": _q("Total"),
        "currency": _q("Currency"),
        "status": status,
        "channel": channel,
        "items": "_items",
        "coupon_code": _blank(_q("Discount Code")),
    }
    staged = stager.finish(
        KINDS["purchases"], orders, exprs, {}, opts, src, f"NOT {unpaid} AND _miss IS NULL"
    )
    staged.rows_read += structural + missing + len(unnamed)
    staged.rejected += structural + missing + len(unnamed)
    if unnamed:
        lines = stager._lines_for([int(u[0]) - 2 for u in unnamed], [u[0] for u in unnamed], src)
        con.executemany(
            "INSERT INTO import_rejects VALUES (?, ?, ?, 'order_id', ?, NULL)",
            [
                [stager.import_id, src.display, ln, "order_id: the order Name is empty"]
                for ln in lines
            ],
        )
    if skipped:
        shown = ", ".join(str(s[0]) for s in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        staged.warnings.append(
            f"{len(skipped)} order(s) not paid yet (pending/authorized, no 'Paid at') skipped: "
            f"{shown}; import a later export once they are paid"
        )

    accepts = f"lower(trim({_q('Accepts Marketing')}))"
    consent = {
        "email": _q("Email"),
        "channel": "'email'",
        "purpose": "'marketing'",
        "granted": _q("Accepts Marketing"),
        "timestamp": _q("Created at"),
        "source": "'shopify'",
    }
    consents = stager.finish(
        KINDS["consents"],
        orders,
        consent,
        {},
        opts,
        src,
        # only orders that imported: a rejected order's line is reported once, as a purchase
        f"_line IN (SELECT _line FROM {staged.table}) AND {_blank(_q('Email'))} IS NOT NULL "
        f"AND {accepts} IS NOT NULL AND {accepts} <> ''",
    )
    _drop(stager, orders)
    return [(KINDS["purchases"], staged), (KINDS["consents"], consents)]


# ---------------------------------------------------------------------------------------------

register(
    Preset(
        "amplitude",
        "events",
        ("jsonl", "json"),
        "Amplitude Export API JSON lines: events, and users from user_properties",
        stage_amplitude,
    )
)
register(
    Preset(
        "mixpanel",
        "events",
        ("jsonl", "json"),
        "Mixpanel raw event export JSON lines: events",
        stage_mixpanel,
    )
)
register(
    Preset(
        "firebase",
        "events",
        ("jsonl", "json", "parquet"),
        "Firebase / GA4 BigQuery export (JSON lines or Parquet): events and users",
        stage_firebase,
    )
)
register(
    Preset(
        "appsflyer",
        "events",
        ("csv", "tsv"),
        "AppsFlyer raw-data CSV (installs, in-app events): events and users' attribution",
        stage_appsflyer,
    )
)
register(
    Preset(
        "shopify",
        "purchases",
        ("csv",),
        "Shopify orders export CSV: one purchase per order, and e-mail marketing consent",
        stage_shopify,
    )
)

# the provider presets of message events register with these (mcrm.ingest.message_presets)
from mcrm.ingest import message_presets  # noqa: E402, F401
