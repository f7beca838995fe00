"""`segments.yaml` validation: every error of `mcrm.segments.model` with its message, its
location (`segments.yaml:LINE / key.path`) and its hint; `mcrm segments validate` reports all
problems at once (exit 1); unknown event names are warnings naming the closest known events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mcrm.cli.main import app
from mcrm.errors import ConfigError, McrmError
from mcrm.segments.engine import validate
from mcrm.segments.model import load_segments
from tests.segdata import SegWS

HEAD = """\
places:
  prague_store: {lat: 50.0875, lon: 14.4213, radius_km: 2}
tiers: {window: 365d, levels: {bronze: 0, gold: 3000}}
segments:
  ok: {where: {rfm: champions}}
  s:
    description: test
    where: """
LINE = 8  # the line of `where:` above


def P(where: str) -> str:
    """A file whose segment `s` has this (flow-style) where."""
    return HEAD + where + "\n"


W = "segments.s.where"
# (id, yaml, message (substring), key path, line, hint (substring) or None)
CASES: list[tuple[str, str, str, str, int, str | None]] = [
    # predicate shape
    (
        "unknown_predicate",
        P("{evnt: add_to_cart, within: 3d}"),
        "unknown predicate 'evnt'",
        f"{W}.evnt",
        LINE,
        "did you mean 'event'?",
    ),
    (
        "unknown_key",
        P("{event: add_to_cart, withn: 3d}"),
        "unknown key 'withn' for 'event'",
        f"{W}.withn",
        LINE,
        "did you mean 'within'?",
    ),
    (
        "unknown_key_no_options",
        P("{rfm: champions, within: 3d}"),
        "unknown key 'within' for 'rfm'",
        f"{W}.within",
        LINE,
        "'rfm' takes no options here",
    ),
    (
        "one_predicate_per_mapping",
        P("{event: add_to_cart, rfm: champions}"),
        "one predicate per mapping, found event, rfm",
        W,
        LINE,
        "combine them with all: [...] or any: [...]",
    ),
    (
        "not_a_mapping",
        P("champions"),
        "expected a predicate mapping, found 'champions'",
        W,
        LINE,
        "e.g. {event: add_to_cart, within: 3d}",
    ),
    (
        "empty_all",
        P("{all: []}"),
        "'all' needs a non-empty list of predicates",
        f"{W}.all",
        LINE,
        None,
    ),
    (
        "nested_in_any",
        HEAD + "\n      any:\n        - {rfm: champions}\n        - {evnt: x}\n",
        "unknown predicate 'evnt'",
        f"{W}.any[1].evnt",
        LINE + 3,
        "did you mean 'event'?",
    ),
    (
        "inside_not",
        P("{not: {lifecycle: dormnt}}"),
        "unknown lifecycle stage 'dormnt'",
        f"{W}.not.lifecycle",
        LINE,
        "did you mean 'dormant'?",
    ),
    # durations and windows
    (
        "duration_number",
        P("{event: add_to_cart, within: 7}"),
        "expected a duration like 30d, found 7",
        f"{W}.within",
        LINE,
        "write it with a unit: '7d'",
    ),
    (
        "duration_words",
        P("{event: add_to_cart, within: 7 days}"),
        "expected a duration like 30d, found '7 days'",
        f"{W}.within",
        LINE,
        "e.g. 7d, 12h, 2w",
    ),
    (
        "within_and_between",
        P("{event: x, within: 3d, between: [2025-01-01, 2025-02-01]}"),
        "use within or between, not both",
        W,
        LINE,
        None,
    ),
    (
        "between_shape",
        P("{event: x, between: [2025-01-01]}"),
        "between needs [from, to] dates",
        f"{W}.between",
        LINE,
        None,
    ),
    (
        "between_bad_date",
        P("{event: x, between: [2025-01-01, yesterday]}"),
        "expected a date like 2026-11-01, found 'yesterday'",
        f"{W}.between[1]",
        LINE,
        None,
    ),
    (
        "first_time_without_window",
        P("{event: x, first_time: true}"),
        "first_time needs a window (within or between)",
        f"{W}.first_time",
        LINE,
        None,
    ),
    (
        "first_time_not_bool",
        P("{event: x, within: 3d, first_time: sometimes}"),
        "first_time needs true or false",
        f"{W}.first_time",
        LINE,
        None,
    ),
    (
        "event_name",
        P("{event: 42}"),
        "event needs an event name, found 42",
        f"{W}.event",
        LINE,
        None,
    ),
    (
        "event_where_shape",
        P("{event: x, where: [a]}"),
        "where needs {property: value} pairs",
        f"{W}.where",
        LINE,
        None,
    ),
    (
        "event_where_op",
        P("{event: x, where: {price: {above: 3}}}"),
        "property price: expected {op: value}",
        f"{W}.where.price",
        LINE,
        "operators: eq, ne",
    ),
    # comparisons
    (
        "count_not_mapping",
        P("{event: x, count: 3}"),
        "expected a comparison like {gte: 3}, found 3",
        f"{W}.count",
        LINE,
        "operators: gte",
    ),
    (
        "count_unknown_op",
        P("{event: x, count: {gtee: 3}}"),
        "unknown comparison 'gtee'",
        f"{W}.count.gtee",
        LINE,
        "did you mean 'gte'?",
    ),
    (
        "count_between_order",
        P("{event: x, count: {between: [5, 1]}}"),
        "between [5, 1]: low is above high",
        f"{W}.count.between",
        LINE,
        None,
    ),
    (
        "count_between_shape",
        P("{event: x, count: {between: [5]}}"),
        "between needs [low, high], found [5]",
        f"{W}.count.between",
        LINE,
        None,
    ),
    (
        "count_not_number",
        P("{event: x, count: {gte: many}}"),
        "expected a number, found 'many'",
        f"{W}.count.gte",
        LINE,
        None,
    ),
    # attr
    (
        "attr_unknown_field",
        P("{attr: gendr, eq: female}"),
        "unknown profile field 'gendr'",
        f"{W}.attr",
        LINE,
        "did you mean 'gender'?",
    ),
    (
        "attr_custom_hint",
        P("{attr: loyalty_points, gt: 3}"),
        "unknown profile field 'loyalty_points'",
        f"{W}.attr",
        LINE,
        "custom attributes are written attributes.NAME",
    ),
    (
        "attr_two_ops",
        P("{attr: os, eq: iOS, ne: Android}"),
        "attr os needs exactly one operator",
        W,
        LINE,
        "operators: eq",
    ),
    (
        "attr_name",
        P("{attr: 5, eq: x}"),
        "attr needs a field name, found 5",
        f"{W}.attr",
        LINE,
        None,
    ),
    (
        "attr_in_list",
        P("{attr: os, in: iOS}"),
        "in needs a list, found 'iOS'",
        f"{W}.in",
        LINE,
        None,
    ),
    (
        "attr_between",
        P("{attr: attributes.x, between: 3}"),
        "between needs [low, high], found 3",
        f"{W}.between",
        LINE,
        None,
    ),
    (
        "attr_exists",
        P("{attr: email, exists: maybe}"),
        "exists needs true or false, found 'maybe'",
        f"{W}.exists",
        LINE,
        None,
    ),
    (
        "attr_contains_string",
        P("{attr: city, contains: 5}"),
        "contains needs a string, found 5",
        f"{W}.contains",
        LINE,
        "quote it",
    ),
    (
        "attr_regex",
        P("{attr: email, matches: '(unclosed'}"),
        "invalid regular expression",
        f"{W}.matches",
        LINE,
        None,
    ),
    (
        "country_iso",
        P("{country: Czechia}"),
        "country needs ISO codes like CZ, found 'Czechia'",
        f"{W}.country",
        LINE,
        None,
    ),
    # YAML 1.1: an unquoted NO (Norway) is a boolean
    (
        "country_norway",
        P("{country: [CZ, NO]}"),
        "country needs ISO codes like CZ, found ['CZ', False]",
        f"{W}.country",
        LINE,
        'quote it: "NO"',
    ),
    # YAML 1.1: 09 is not a number (not valid octal) but a string
    (
        "habit_hour_09",
        P("{habit: {event: purchase, hour: [09, 17]}}"),
        "hour needs [from, to) hours 0..24, found ['09', 17]",
        f"{W}.habit.hour",
        LINE,
        "e.g. [12, 15] means 12:00 to 14:59",
    ),
    (
        "age",
        P("{age: [34, 25]}"),
        "age needs [min, max] whole years, found [34, 25]",
        f"{W}.age",
        LINE,
        None,
    ),
    # activity, purchases, money
    (
        "first_seen_window",
        P("{first_seen: {}}"),
        "first_seen needs within or between",
        f"{W}.first_seen",
        LINE,
        None,
    ),
    (
        "mapping_expected",
        P("{purchase: 5}"),
        "'purchase' needs a mapping, found 5",
        f"{W}.purchase",
        LINE,
        "keys: within, between, count, category, sku, amount",
    ),
    (
        "purchase_unknown_key",
        P("{purchase: {categry: shoes}}"),
        "unknown key 'categry' for 'purchase'",
        f"{W}.purchase.categry",
        LINE,
        "did you mean 'category'?",
    ),
    (
        "purchase_category",
        P("{purchase: {category: [{a: 1}]}}"),
        "category needs a name or a list of names",
        f"{W}.purchase.category",
        LINE,
        None,
    ),
    (
        "spend_needs_comparison",
        P("{spend: {within: 90d}}"),
        "spend needs a comparison (gte, lte, between, ...)",
        f"{W}.spend",
        LINE,
        None,
    ),
    # rfm and lifecycle
    (
        "rfm_unknown_segment",
        P("{rfm: champs}"),
        "unknown RFM segment 'champs'",
        f"{W}.rfm",
        LINE,
        "did you mean 'champions'?",
    ),
    (
        "rfm_list_item",
        P("{rfm: [champions, lsot]}"),
        "unknown RFM segment 'lsot'",
        f"{W}.rfm[1]",
        LINE,
        "did you mean 'lost'?",
    ),
    (
        "rfm_range",
        P("{rfm: {r: [0, 6]}}"),
        "rfm r needs a score or [low, high] in 1..5, found [0, 6]",
        f"{W}.rfm.r",
        LINE,
        None,
    ),
    (
        "rfm_range_key",
        P("{rfm: {x: 1}}"),
        "unknown key 'x' for rfm",
        f"{W}.rfm.x",
        LINE,
        "keys: r, f, m",
    ),
    (
        "unknown_stage",
        P("{lifecycle: [active, dormnt]}"),
        "unknown lifecycle stage 'dormnt'",
        f"{W}.lifecycle",
        LINE,
        "did you mean 'dormant'?",
    ),
    (
        "lifecycle_change_to",
        P("{lifecycle_change: {from: dormant}}"),
        "lifecycle_change needs 'to'",
        f"{W}.lifecycle_change",
        LINE,
        None,
    ),
    (
        "lifecycle_change_stage",
        P("{lifecycle_change: {from: sleeping, to: active}}"),
        "unknown lifecycle stage 'sleeping'",
        f"{W}.lifecycle_change.from",
        LINE,
        "stages: new, reactivated",
    ),
    # geo
    (
        "unknown_place",
        P("{near: pargue_store}"),
        "unknown place 'pargue_store'",
        f"{W}.near",
        LINE,
        "did you mean 'prague_store'?",
    ),
    (
        "no_places",
        "segments:\n  s:\n    where: {visited: home, within: 7d}\n",
        "unknown place 'home'",
        "segments.s.where.visited",
        3,
        "define it under places:",
    ),
    (
        "near_radius",
        P("{near: prague_store, radius_km: -1}"),
        "radius_km must be positive",
        f"{W}.radius_km",
        LINE,
        None,
    ),
    (
        "visited_min_count",
        P("{visited: prague_store, min_count: 0}"),
        "min_count needs a whole number >= 1, found 0",
        f"{W}.min_count",
        LINE,
        None,
    ),
    # habit, overdue, birthday, tier, reachable, segment, bucket, sql
    (
        "habit_weekday",
        P("{habit: {weekday: [sat, funday]}}"),
        "unknown weekday 'funday'",
        f"{W}.habit.weekday",
        LINE,
        "mon, tue, ... sun",
    ),
    (
        "habit_slot",
        P("{habit: {event: purchase}}"),
        "habit needs weekday, hour or both",
        f"{W}.habit",
        LINE,
        None,
    ),
    (
        "habit_share",
        P("{habit: {weekday: sat, min_share: 2}}"),
        "min_share needs a fraction in (0, 1], found 2",
        f"{W}.habit.min_share",
        LINE,
        None,
    ),
    (
        "habit_min_count",
        P("{habit: {weekday: sat, min_count: 0}}"),
        "min_count needs a whole number >= 1, found 0",
        f"{W}.habit.min_count",
        LINE,
        None,
    ),
    (
        "overdue_factor",
        P("{overdue: {factor: -1}}"),
        "factor needs a positive number, found -1",
        f"{W}.overdue.factor",
        LINE,
        None,
    ),
    (
        "overdue_min_purchases",
        P("{overdue: {min_purchases: 1}}"),
        "min_purchases needs a whole number >= 2, found 1",
        f"{W}.overdue.min_purchases",
        LINE,
        "a gap needs two purchase days",
    ),
    (
        "birthday_within",
        P("{birthday: {within: 3}}"),
        "expected a duration like 30d, found 3",
        f"{W}.birthday.within",
        LINE,
        "write it with a unit: '3d'",
    ),
    (
        "unknown_tier",
        P("{tier: gld}"),
        "unknown tier 'gld'",
        f"{W}.tier",
        LINE,
        "did you mean 'gold'?",
    ),
    (
        "tier_without_tiers",
        "segments:\n  s:\n    where: {tier: gold}\n",
        "unknown tier 'gold'",
        "segments.s.where.tier",
        3,
        "define tiers: in segments.yaml",
    ),
    (
        "reachable",
        P("{reachable: emial}"),
        "unknown channel 'emial'",
        f"{W}.reachable",
        LINE,
        "did you mean 'email'?",
    ),
    (
        "unknown_segment",
        P("{segment: okk}"),
        "unknown segment 'okk'",
        f"{W}.segment",
        LINE,
        "did you mean 'ok'?",
    ),
    (
        "bucket_percent",
        P("{bucket: {percent: 150}}"),
        "percent needs a number 0..100, found 150",
        f"{W}.bucket.percent",
        LINE,
        None,
    ),
    (
        "bucket_salt",
        P("{bucket: {percent: 10, salt: [a]}}"),
        "salt needs a string",
        f"{W}.bucket.salt",
        LINE,
        None,
    ),
    (
        "sql_semicolon",
        P("{sql: 'TRUE; DROP TABLE users'}"),
        "sql must be one expression (no ';')",
        f"{W}.sql",
        LINE,
        None,
    ),
    (
        "sql_empty",
        P("{sql: ''}"),
        "sql needs a boolean SQL expression over users u",
        f"{W}.sql",
        LINE,
        None,
    ),
    # cycles
    (
        "cycle",
        "segments:\n  a: {where: {segment: b}}\n  b:\n    where: {segment: a}\n",
        "segment cycle: a -> b -> a",
        "segments.a.where",
        2,
        "a segment cannot include itself",
    ),
    (
        "self_cycle",
        "segments:\n  a:\n    where: {any: [{rfm: lost}, {segment: a}]}\n",
        "segment cycle: a -> a",
        "segments.a.where",
        3,
        None,
    ),
    # segment entries
    (
        "segment_name",
        "segments:\n  Big-Spenders: {where: {rfm: champions}}\n",
        "segment name 'Big-Spenders' must be lower_snake_case",
        "segments.Big-Spenders",
        2,
        None,
    ),
    (
        "segment_key",
        "segments:\n  s:\n    descripton: x\n    where: {rfm: champions}\n",
        "unknown key 'descripton'",
        "segments.s.descripton",
        3,
        "did you mean 'description'?",
    ),
    (
        "segment_no_where",
        "segments:\n  s: {description: x}\n",
        "segment s has no where:",
        "segments.s",
        2,
        None,
    ),
    (
        "segment_not_mapping",
        "segments:\n  s: champions\n",
        "segment s needs a mapping with where:",
        "segments.s",
        2,
        None,
    ),
    (
        "description_text",
        "segments:\n  s:\n    description: [a]\n    where: {rfm: lost}\n",
        "description must be text",
        "segments.s.description",
        3,
        None,
    ),
    (
        "segments_mapping",
        "segments: [a, b]\n",
        "segments must be a mapping of name: {description, where}",
        "segments",
        1,
        None,
    ),
    # top level and settings
    (
        "top_key",
        "segmnts:\n  s: {where: {rfm: lost}}\n",
        "unknown key 'segmnts'",
        "segmnts",
        1,
        "did you mean 'segments'?",
    ),
    (
        "rfm_scheme",
        "rfm: {window: 365d, scheme: rf11}\nsegments: {}\n",
        "unknown RFM scheme 'rf11'",
        "rfm.scheme",
        1,
        "rf10 or rfm11",
    ),
    (
        "rfm_window",
        "rfm:\n  window: 365\n",
        "expected a duration like 30d, found 365",
        "rfm.window",
        2,
        "write it with a unit: '365d'",
    ),
    (
        "rfm_key",
        "rfm:\n  windw: 365d\n",
        "unknown key 'windw' for 'rfm'",
        "rfm.windw",
        2,
        "did you mean 'window'?",
    ),
    (
        "lifecycle_order",
        "lifecycle:\n  active_days: 60\n  dormant_days: 30\n",
        "lifecycle needs active_days < dormant_days < churn_days, found 60, 30, 90",
        "lifecycle",
        1,
        None,
    ),
    (
        "lifecycle_days",
        "lifecycle:\n  new_days: 0\n",
        "new_days needs a whole number of days > 0, found 0",
        "lifecycle.new_days",
        2,
        None,
    ),
    (
        "lifecycle_activity",
        "lifecycle:\n  activity: session_start\n",
        "activity needs a list of event names",
        "lifecycle.activity",
        2,
        None,
    ),
    (
        "tiers_order",
        "tiers:\n  window: 365d\n  levels:\n    bronze: 0\n    gold: 3000\n    silver: 1000\n",
        "tier levels must be in increasing order of spend",
        "tiers.levels",
        3,
        None,
    ),
    (
        "tiers_equal",
        "tiers:\n  levels: {bronze: 0, silver: 0}\n",
        "tier levels must be in increasing order of spend",
        "tiers.levels",
        2,
        None,
    ),
    (
        "tier_value",
        "tiers:\n  levels:\n    bronze: 0\n    gold: lots\n",
        "tier gold needs a minimum spend, found 'lots'",
        "tiers.levels.gold",
        4,
        None,
    ),
    (
        "tiers_levels",
        "tiers:\n  window: 365d\n",
        "tiers needs levels: {name: minimum spend, ...}",
        "tiers.levels",
        1,
        None,
    ),
    (
        "place_lat",
        "places:\n  p:\n    lat: 100\n    lon: 10\n",
        "latitude 100.0 is outside -90..90",
        "places.p.lat",
        3,
        None,
    ),
    (
        "place_lon",
        "places:\n  p: {lat: 10, lon: 190}\n",
        "longitude 190.0 is outside -180..180",
        "places.p.lon",
        2,
        None,
    ),
    (
        "place_radius",
        "places:\n  p: {lat: 10, lon: 10, radius_km: 0}\n",
        "radius_km must be positive",
        "places.p.radius_km",
        2,
        None,
    ),
    (
        "place_number",
        "places:\n  p: {lat: north, lon: 10}\n",
        "expected a latitude, found 'north'",
        "places.p.lat",
        2,
        None,
    ),
    (
        "place_key",
        "places:\n  p: {lat: 10, lon: 10, radius: 3}\n",
        "unknown key 'radius'",
        "places.p.radius",
        2,
        "did you mean 'radius_km'?",
    ),
    (
        "place_shape",
        "places:\n  p: [10, 10]\n",
        "place p needs {lat, lon, radius_km}",
        "places.p",
        2,
        None,
    ),
    (
        "places_shape",
        "places: [a]\n",
        "places must be a mapping of name: {lat, lon, radius_km}",
        "places",
        1,
        None,
    ),
    ("file_shape", "- a\n- b\n", "segments.yaml must be a mapping", "", 1, None),
]


def errors_for(tmp_path: Path, text: str) -> list[McrmError]:
    w = SegWS(tmp_path / "ws")
    (w.root / "segments.yaml").write_text(text, encoding="utf-8")
    errors, warnings = validate(w.ws)
    assert warnings == []
    return errors


@pytest.mark.parametrize(
    ("text", "message", "key", "line", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_message_location_and_hint(
    tmp_path: Path, text: str, message: str, key: str, line: int, hint: str | None
) -> None:
    errors = errors_for(tmp_path, text)
    matching = [e for e in errors if message in e.message]
    assert matching, [e.render() for e in errors]
    e = matching[0]
    assert e.where is not None
    assert e.where.file == "segments.yaml"
    assert e.where.line == line, e.render()
    assert (e.where.key or "") == key, e.render()
    if hint is None:
        pass
    else:
        assert e.hint is not None and hint in e.hint, e.hint
    assert e.render().startswith(message) or message in e.render()
    assert f"(segments.yaml:{line}" in e.render()


def test_each_error_is_reported_once(tmp_path: Path) -> None:
    for _, text, message, *_ in CASES:
        errors = errors_for(tmp_path / message[:20].replace(" ", "_").replace("/", "_"), text)
        assert len([e for e in errors if message in e.message]) == 1, message


def test_a_valid_file_has_no_problems(tmp_path: Path) -> None:
    assert errors_for(tmp_path, P("{all: [{rfm: champions}, {near: prague_store}]}")) == []


def test_duplicate_yaml_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    (w.root / "segments.yaml").write_text(
        "segments:\n  a:\n    where: {rfm: lost}\n  a:\n    where: {rfm: champions}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_segments(w.root)
    e = info.value
    assert e.message == "duplicate key 'a'"
    assert e.where is not None and e.where.line == 4 and e.where.key == "segments.a"
    assert e.hint is not None and "keeps only the last" in e.hint


def test_other_commands_stop_at_the_first_problem(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    (w.root / "segments.yaml").write_text(
        "segments:\n  a: {where: {evnt: x}}\n  b: {where: {rfm: champs}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_segments(w.root)
    assert info.value.message == "unknown predicate 'evnt'"
    assert info.value.hint is not None and "1 more problem(s)" in info.value.hint


# ---------------------------------------------------------------------------------------------
# `mcrm segments validate`


def run(w: SegWS, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--workspace", str(w.root), *args])
    return r.exit_code, r.stdout, r.stderr


def test_validate_reports_all_problems_and_exits_1(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    (w.root / "segments.yaml").write_text(
        "segmnts: {}\n"
        "segments:\n"
        "  a: {where: {evnt: add_to_cart}}\n"
        "  b: {where: {event: x, within: 7}}\n"
        "  c: {where: {rfm: champs}}\n"
        "  d: {where: {lifecycle: dormnt}}\n",
        encoding="utf-8",
    )
    code, out, err = run(w, "segments", "validate")
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    expected = [
        "error: unknown key 'segmnts' (segments.yaml:1 / segmnts)",
        "error: unknown predicate 'evnt' (segments.yaml:3 / segments.a.where.evnt)",
        "error: expected a duration like 30d, found 7 (segments.yaml:4 / segments.b.where.within)",
        "error: unknown RFM segment 'champs' (segments.yaml:5 / segments.c.where.rfm)",
        "error: unknown lifecycle stage 'dormnt' (segments.yaml:6 / segments.d.where.lifecycle)",
    ]
    for e in expected:
        assert e in lines, err
    assert "  hint: did you mean 'event'?" in lines
    assert "  hint: write it with a unit: '7d'" in lines
    assert lines[-1] == "5 problem(s) in segments.yaml"


def test_validate_warns_about_unknown_events_and_exits_0(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    t = dt.datetime(2025, 1, 1)
    w.load(
        "events",
        [
            {"user_id": "u1", "name": n, "timestamp": t}
            for n in ("add_to_cart", "add_to_wishlist", "session_start", "purchase_completed")
        ],
    )
    (w.root / "segments.yaml").write_text(
        "segments:\n"
        "  carts:\n"
        "    where: {event: add_to_crt, within: 3d}\n"
        "  fine:\n"
        "    where: {event: session_start}\n"
        "  nowhere:\n"
        "    where: {habit: {event: zzz_qqq, weekday: sat}}\n",
        encoding="utf-8",
    )
    code, out, err = run(w, "segments", "validate")
    assert code == 0, err
    assert out == ""
    # rich wraps stderr at 120 columns (see test_warnings_are_one_line): unwrap first
    warnings = [" ".join(("warning:" + x).split()) for x in err.split("warning:")[1:]]
    warnings = [x.split(" segments.yaml is valid")[0] for x in warnings]
    assert len(warnings) == 2, err
    carts = next(x for x in warnings if "add_to_crt" in x)
    assert (
        "event 'add_to_crt' never occurs in the data (segments.yaml:2 / segments.carts)" in carts
    )
    assert carts.endswith("; closest: add_to_cart, add_to_wishlist"), carts
    nowhere = next(x for x in warnings if "zzz_qqq" in x)
    assert "closest" not in nowhere
    assert "segments.yaml is valid" in err
    # compute still runs, with the same warnings on stderr
    code, out, err = run(w, "segments", "compute", "fine", "--as-of", "2025-01-02", "-f", "json")
    assert code == 0, err
    assert any("add_to_crt" in x for x in err.splitlines() if x.startswith("warning:"))


def test_validate_exit_2_on_broken_yaml(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    (w.root / "segments.yaml").write_text("segments:\n  a: {where: [\n", encoding="utf-8")
    code, out, err = run(w, "segments", "validate")
    assert code == 2
    assert out == ""
    assert "invalid YAML" in err and "segments.yaml" in err


def test_warnings_are_one_line(tmp_path: Path) -> None:
    w = SegWS(tmp_path / "ws")
    w.load(
        "events", [{"user_id": "u1", "name": "add_to_cart", "timestamp": dt.datetime(2025, 1, 1)}]
    )
    name = "a_rather_long_event_name_that_nobody_ever_sends_" + "x" * 40
    (w.root / "segments.yaml").write_text(
        f"segments:\n  s:\n    where: {{event: {name}}}\n", encoding="utf-8"
    )
    code, _, err = run(w, "segments", "validate")
    assert code == 0
    warning = [x for x in err.splitlines() if name in x]
    assert warning and warning[0].startswith("warning: event ")
    assert warning[0].endswith("/ segments.s)")
