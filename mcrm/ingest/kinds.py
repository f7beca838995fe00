"""What each import KIND accepts: canonical input columns, their types and row checks.

A column's `parse` says how a raw value becomes typed: `str`, `ts` (timestamp: offset
honoured, naive read in the workspace zone, epoch when asked), `date`, `decimal` (money,
DECIMAL(18,3)), `rate` (DECIMAL(18,8)), `double`, `bool`, `json`. `need` lists groups of
columns of which at least one must be present in the file (and non-empty in every row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SQL_TYPES = {
    "str": "VARCHAR",
    "ts": "TIMESTAMP",
    "date": "DATE",
    "decimal": "DECIMAL(18,3)",
    "rate": "DECIMAL(18,8)",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "json": "JSON",
}


@dataclass(frozen=True)
class Col:
    name: str
    parse: str = "str"
    pii: bool = False

    @property
    def stored(self) -> str:
        """The staging / table column name (`timestamp` is stored as `ts`)."""
        return "ts" if self.name == "timestamp" else self.name

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.parse]


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    columns: tuple[Col, ...]
    need: tuple[tuple[str, ...], ...] = ()
    # SQL CASE branches: (condition over typed staging columns, reject reason expression)
    checks: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # None: the staging table has every column (NULL where the file has none). Otherwise only
    # these plus the columns the file has: the loader reads an absent column as NULL (a
    # 5-million-row staging table with nine all-NULL columns costs about a second to write)
    sparse_keep: tuple[str, ...] | None = None
    # False: the loader never reads `_row` (a typed CSV's staging table then leaves it NULL
    # and orders by rowid, which is file order, instead of writing it into every row)
    needs_row: bool = True

    def col(self, name: str) -> Col | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


PLATFORMS = "('ios','android','web')"
CHANNELS = "('email','sms','push','inapp')"

_FUTURE = (
    "ts > CAST($now AS TIMESTAMP) + INTERVAL 1 DAY",
    "'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ') "
    "|| ' is more than a day in the future (device clock?)'",
)
_PLATFORM = (
    "platform IS NOT NULL AND platform NOT IN " + PLATFORMS,
    "'platform must be ios, android or web, found ''' || platform || ''''",
)
_COUNTRY = (
    "country IS NOT NULL AND NOT regexp_full_match(country, '[A-Z]{2}')",
    "'country must be an ISO 3166 two-letter code, found ''' || country || ''''",
)
_CURRENCY = (
    "currency IS NOT NULL AND NOT regexp_full_match(currency, '[A-Z]{3}')",
    "'currency must be an ISO 4217 code, found ''' || currency || ''''",
)
_LAT = (
    "(latitude IS NOT NULL AND abs(latitude) > 90) OR "
    "(longitude IS NOT NULL AND abs(longitude) > 180)",
    "'latitude/longitude out of range'",
)

EVENTS = Kind(
    "events",
    "events",
    (
        Col("event_id"),
        Col("user_id"),
        Col("anonymous_id"),
        Col("name"),
        Col("timestamp", "ts"),
        Col("session_id"),
        Col("platform"),
        Col("os"),
        Col("os_version"),
        Col("app_version"),
        Col("device_model"),
        Col("screen"),
        Col("country"),
        Col("region"),
        Col("city"),
        Col("latitude", "double"),
        Col("longitude", "double"),
        Col("utm_source"),
        Col("utm_medium"),
        Col("utm_campaign"),
        Col("properties", "json"),
        Col("revenue", "decimal"),
        Col("currency"),
    ),
    need=(("name",), ("timestamp",), ("user_id", "anonymous_id")),
    sparse_keep=("event_id", "user_id", "anonymous_id", "name", "timestamp"),
    needs_row=False,
    checks=(
        ("name IS NULL OR trim(name) = ''", "'name is empty'"),
        ("ts IS NULL", "'timestamp is empty'"),
        ("user_id IS NULL AND anonymous_id IS NULL", "'user_id and anonymous_id are both empty'"),
        _FUTURE,
        _PLATFORM,
        _COUNTRY,
        _CURRENCY,
        _LAT,
        ("revenue IS NOT NULL AND currency IS NULL", "'revenue without a currency'"),
    ),
)

PURCHASES = Kind(
    "purchases",
    "purchases",
    (
        Col("order_id"),
        Col("user_id"),
        Col("customer_id"),
        Col("email", pii=True),
        Col("timestamp", "ts"),
        Col("amount", "decimal"),
        Col("currency"),
        Col("status"),
        Col("channel"),
        Col("items", "json"),
        Col("source"),
        Col("campaign"),
        Col("coupon_code"),
    ),
    need=(
        ("order_id",),
        ("timestamp",),
        ("amount",),
        ("currency",),
        ("user_id", "customer_id", "email"),
    ),
    checks=(
        (
            "user_id IS NULL AND customer_id IS NULL AND email IS NULL",
            "'no user_id, customer_id or email to attach the order to'",
        ),
        (
            "email IS NOT NULL AND NOT regexp_full_match(email, '[^@\\s]+@[^@\\s]+\\.[^@\\s]+')",
            "'email is not a valid address'",
        ),
        _FUTURE,
        _CURRENCY,
        ("amount < 0", "'amount is negative (refunds are status refunded)'"),
        (
            "status NOT IN ('paid','refunded','cancelled')",
            "'status must be paid, refunded or cancelled, found ''' || status || ''''",
        ),
        (
            "channel IS NOT NULL AND channel NOT IN ('app','web','store')",
            "'channel must be app, web or store, found ''' || channel || ''''",
        ),
        (
            "items IS NOT NULL AND json_type(items) <> 'ARRAY'",
            "'items must be a JSON array of {sku, name, category, quantity, price}'",
        ),
    ),
)

USERS = Kind(
    "users",
    "users",
    (
        Col("user_id"),
        Col("email", pii=True),
        Col("phone", pii=True),
        Col("first_name"),
        Col("last_name"),
        Col("gender"),
        Col("birth_date", "date"),
        Col("locale"),
        Col("country"),
        Col("region"),
        Col("city"),
        Col("home_lat", "double"),
        Col("home_lon", "double"),
        Col("timezone"),
        Col("os"),
        Col("os_version"),
        Col("device_model"),
        Col("app_version"),
        Col("acq_source"),
        Col("acq_medium"),
        Col("acq_campaign"),
        Col("install_time", "ts"),
        Col("attributes", "json"),
        Col("first_seen", "ts"),
        Col("last_seen", "ts"),
        Col("customer_id"),
        Col("anonymous_id"),
    ),
    need=(("user_id",),),
    checks=(
        ("user_id IS NULL", "'user_id is empty'"),
        (
            "email IS NOT NULL AND NOT regexp_full_match(email, '[^@\\s]+@[^@\\s]+\\.[^@\\s]+')",
            "'email is not a valid address'",
        ),
        (
            "phone IS NOT NULL AND NOT regexp_full_match(phone, '\\+[1-9][0-9]{6,14}')",
            "'phone is not an E.164 number (+ and 7 to 15 digits)'",
        ),
        _COUNTRY,
        (
            "timezone IS NOT NULL AND NOT list_contains($zones, timezone)",
            "'unknown time zone ''' || timezone || ''''",
        ),
        (
            "(home_lat IS NOT NULL AND abs(home_lat) > 90) OR "
            "(home_lon IS NOT NULL AND abs(home_lon) > 180)",
            "'home_lat/home_lon out of range'",
        ),
        ("birth_date > CAST($now AS DATE)", "'birth_date is in the future'"),
        (
            "attributes IS NOT NULL AND json_type(attributes) <> 'OBJECT'",
            "'attributes must be a JSON object'",
        ),
        (
            "install_time > CAST($now AS TIMESTAMP) + INTERVAL 1 DAY",
            "'install_time is more than a day in the future'",
        ),
    ),
)

DEVICES = Kind(
    "devices",
    "devices",
    (
        Col("user_id"),
        Col("device_id"),
        Col("platform"),
        Col("push_token", pii=True),
        Col("push_provider"),
        Col("push_enabled", "bool"),
        Col("os"),
        Col("os_version"),
        Col("device_model"),
        Col("app_version"),
        Col("last_seen", "ts"),
    ),
    need=(("user_id",), ("device_id",)),
    checks=(
        ("user_id IS NULL OR device_id IS NULL", "'user_id and device_id are required'"),
        _PLATFORM,
        (
            "push_provider IS NOT NULL AND push_provider NOT IN ('fcm','apns','expo','onesignal')",
            "'push_provider must be fcm, apns, expo or onesignal, found ''' "
            "|| push_provider || ''''",
        ),
        (
            "last_seen > CAST($now AS TIMESTAMP) + INTERVAL 1 DAY",
            "'last_seen is more than a day in the future'",
        ),
    ),
)

CONSENTS = Kind(
    "consents",
    "consents",
    (
        Col("user_id"),
        Col("email", pii=True),
        Col("channel"),
        Col("purpose"),
        Col("granted", "bool"),
        Col("timestamp", "ts"),
        Col("source"),
    ),
    need=(("user_id", "email"), ("channel",), ("granted",), ("timestamp",)),
    checks=(
        ("user_id IS NULL AND email IS NULL", "'no user_id or email'"),
        (
            "channel IS NULL OR channel NOT IN " + CHANNELS,
            "'channel must be email, sms, push or inapp, found ''' || coalesce(channel, '') "
            "|| ''''",
        ),
        (
            "purpose NOT IN ('marketing','transactional')",
            "'purpose must be marketing or transactional, found ''' || purpose || ''''",
        ),
        ("granted IS NULL", "'granted is empty'"),
        ("ts IS NULL", "'timestamp is empty'"),
        _FUTURE,
    ),
)

FX_RATES = Kind(
    "fx-rates",
    "fx_rates",
    (Col("date", "date"), Col("currency"), Col("rate", "rate")),
    need=(("date",), ("currency",), ("rate",)),
    checks=(
        (
            "date IS NULL OR currency IS NULL OR rate IS NULL",
            "'date, currency and rate are required'",
        ),
        _CURRENCY,
        ("rate <= 0", "'rate must be positive'"),
    ),
)

AD_SPEND = Kind(
    "ad-spend",
    "ad_spend",
    (Col("date", "date"), Col("source"), Col("campaign"), Col("cost", "decimal"), Col("currency")),
    need=(("date",), ("source",), ("cost",), ("currency",)),
    checks=(
        (
            "date IS NULL OR source IS NULL OR cost IS NULL OR currency IS NULL",
            "'date, source, cost and currency are required'",
        ),
        _CURRENCY,
        ("cost < 0", "'cost is negative'"),
    ),
)

MESSAGE_EVENTS = Kind(
    "message-events",
    "message_events",
    (
        Col("event_id"),
        Col("provider"),
        Col("message_id"),
        Col("user_id"),
        Col("campaign"),
        Col("channel"),
        Col("type"),
        Col("timestamp", "ts"),
        Col("properties", "json"),
    ),
    need=(("type",), ("timestamp",)),
    checks=(
        (
            "type NOT IN ('sent','processed','delivered','deferred','opened','clicked',"
            "'bounced','unsubscribed','resubscribed','spam_report','failed','dropped',"
            "'converted')",
            "'type must be one of sent, processed, delivered, deferred, opened, clicked, "
            "bounced, unsubscribed, resubscribed, spam_report, failed, dropped, converted; "
            "found ''' || coalesce(type, '') || ''''",
        ),
        (
            "channel IS NOT NULL AND channel NOT IN " + CHANNELS,
            "'channel must be email, sms, push or inapp'",
        ),
        _FUTURE,
    ),
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (EVENTS, PURCHASES, USERS, DEVICES, CONSENTS, FX_RATES, AD_SPEND, MESSAGE_EVENTS)
}

# One spelling of the OS: lower-cased and trimmed like `platform` (Amplitude writes `ios`,
# Firebase and Mixpanel `iOS`, apps whatever they log), Apple's other names for it as `ios`
# (as `platform` counts iPadOS). Segment comparisons lower-case both sides anyway; reports'
# `--by os` and the `sql:` escape hatch compare what is stored.
OS_SQL = (
    "CASE lower(trim({c})) WHEN '' THEN NULL WHEN 'iphone os' THEN 'ios' "
    "WHEN 'ipados' THEN 'ios' ELSE lower(trim({c})) END"
)
# Normalisation applied to raw text before checks (lower-casing enums, trimming emails...).
NORMALISE: dict[str, str] = {
    "platform": "lower(trim({c}))",
    "country": "upper(trim({c}))",
    "currency": "upper(trim({c}))",
    "email": "lower(trim({c}))",
    "status": "CASE lower(trim({c})) WHEN 'canceled' THEN 'cancelled' ELSE lower(trim({c})) END",
    "channel": "lower(trim({c}))",
    "purpose": "coalesce(lower(trim({c})), 'marketing')",
    "gender": "lower(trim({c}))",
    "locale": "replace(trim({c}), '_', '-')",
    "push_provider": "lower(trim({c}))",
    "type": "lower(trim({c}))",
    # every kind holding `os` (events, users, devices; plain files and vendor presets alike):
    # ~0.05 us a row, 0.23 s of CPU at 5M events
    "os": OS_SQL,
    "phone": "CASE WHEN starts_with(regexp_replace(trim({c}), '[\\s\\-\\(\\)\\.]', '', 'g'), "
    "'00') THEN '+' || substr(regexp_replace(trim({c}), '[\\s\\-\\(\\)\\.]', '', 'g'), 3) "
    "ELSE regexp_replace(trim({c}), '[\\s\\-\\(\\)\\.]', '', 'g') END",
}
DEFAULTS: dict[tuple[str, str], str] = {
    ("purchases", "status"): "'paid'",
    ("consents", "purpose"): "'marketing'",
}
