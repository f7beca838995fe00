"""Formatting in the user's locale: expectations are CLDR's, checked by hand per locale.

NBSP (U+00A0) is the Czech, Russian and Bulgarian group separator and sits between the amount
and the currency sign; NNBSP (U+202F) precedes the Bulgarian/Russian year mark `г.` and the
English AM/PM (CLDR 42+). Bulgarian does not group four-digit numbers (minimumGroupingDigits 2).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel import Locale

from mcrm.campaigns.i18n import (
    babel_locale,
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_percent,
    normalize_tag,
)

NB = "\u00a0"
NNB = "\u202f"
DAY = dt.date(2025, 6, 1)
WHEN = dt.datetime(2025, 6, 1, 14, 5, tzinfo=ZoneInfo("Europe/Prague"))


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("cs", Locale("cs")),
        ("cs-CZ", Locale("cs", "CZ")),
        ("cs_CZ", Locale("cs", "CZ")),
        ("CS-cz", Locale("cs", "CZ")),
        ("bg-BG", Locale("bg", "BG")),
        ("zh-Hans", Locale("zh", script="Hans")),
        ("zh-CN", Locale("zh", "CN", script="Hans")),
        ("zh-hant-tw", Locale("zh", "TW", script="Hant")),
        ("it-IT", Locale("it", "IT")),
        ("ru-RU", Locale("ru", "RU")),
        ("en-GB", Locale("en", "GB")),
        ("en", Locale("en")),
        ("en_US.UTF-8", Locale("en", "US")),
        ("cs-XX", Locale("cs")),  # unknown territory: the language still applies
    ],
)
def test_babel_locale(tag: str, expected: Locale) -> None:
    assert babel_locale(tag) == expected


@pytest.mark.parametrize(
    "garbage", [None, "", "  ", "garbage!!", "xx", "123", "C", "und", "../etc", "e" * 40]
)
def test_garbage_tags_fall_back_never_raise(garbage: str | None) -> None:
    assert babel_locale(garbage) == Locale("en")
    assert babel_locale(garbage, fallback="cs") == Locale("cs")
    assert babel_locale(garbage, fallback="nonsense") == Locale("en")


def test_non_string_tag_falls_back() -> None:
    assert babel_locale(42) == Locale("en")


def test_normalize_tag() -> None:
    assert normalize_tag("zh_hans_cn") == "zh-Hans-CN"
    assert normalize_tag("cs_cz.UTF-8") == "cs-CZ"
    assert normalize_tag("es-419") == "es-419"
    assert normalize_tag("../../etc/passwd") is None
    assert normalize_tag(None) is None
    assert normalize_tag("C") is None


MONEY = [
    ("cs", Decimal("1234.5"), "CZK", f"1{NB}234,50{NB}Kč"),
    ("cs-CZ", Decimal("1234.5"), "EUR", f"1{NB}234,50{NB}€"),
    ("bg", Decimal("1234.5"), "BGN", f"1234,50{NB}лв."),
    ("bg-BG", Decimal("12345.5"), "EUR", f"12{NB}345,50{NB}€"),
    ("zh-Hans", Decimal("1234.5"), "CNY", "¥1,234.50"),
    ("zh-CN", Decimal("1234.5"), "EUR", "€1,234.50"),
    ("it", Decimal("1234.5"), "EUR", f"1.234,50{NB}€"),
    ("ru", Decimal("1234.5"), "RUB", f"1{NB}234,50{NB}₽"),
    ("en", Decimal("1234.5"), "EUR", "€1,234.50"),
    ("en-GB", Decimal("1234.5"), "GBP", "£1,234.50"),
    ("en", 1000, "JPY", "¥1,000"),  # the currency's own digits
    ("en", "19.99", "USD", "$19.99"),  # money as a decimal string
    ("en", 0.125, "EUR", "€0.13"),  # half-up, float via repr
    ("en", Decimal("-5"), "EUR", "-€5.00"),
    ("cs", 7, "eur", f"7,00{NB}€"),
    # CLDR currencySpacing: a letter symbol next to a digit gets an NBSP (Babel omits it)
    ("en", 150, "CZK", f"CZK{NB}150.00"),
    ("en", -5, "CZK", f"-CZK{NB}5.00"),
    ("zh-Hans", 150, "CZK", f"CZK{NB}150.00"),
    ("en", 5, "CNY", "CN¥5.00"),
    ("de", 5, "CHF", f"5,00{NB}CHF"),
]


@pytest.mark.parametrize(("loc", "amount", "cur", "expected"), MONEY)
def test_format_money(loc: str, amount: Decimal, cur: str, expected: str) -> None:
    assert format_money(amount, cur, loc) == expected


def test_money_rejects_bad_input_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        format_money(1, "euro", "en")
    with pytest.raises(ValueError) as e:
        format_money("jan@example.com", "EUR", "en")
    assert "jan@" not in str(e.value)
    with pytest.raises(TypeError):
        format_money(None, "EUR", "en")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        format_money(float("nan"), "EUR", "en")


NUMBERS = [
    ("cs", f"1{NB}234{NB}567,891", f"1{NB}234", f"15{NB}%"),
    ("bg", f"1{NB}234{NB}567,891", "1234", "15%"),
    ("zh-Hans", "1,234,567.891", "1,234", "15%"),
    ("it", "1.234.567,891", "1.234", "15%"),
    ("ru", f"1{NB}234{NB}567,891", f"1{NB}234", f"15{NB}%"),
    ("en", "1,234,567.891", "1,234", "15%"),
]


@pytest.mark.parametrize(("loc", "big", "small", "pct"), NUMBERS)
def test_numbers_and_percent(loc: str, big: str, small: str, pct: str) -> None:
    assert format_number(1234567.891, loc) == big
    assert format_number(1234, loc) == small
    assert format_percent(0.15, loc) == pct
    assert format_percent(Decimal("0.15"), loc) == pct


def test_number_and_percent_decimals() -> None:
    assert format_number(1234.5, "cs", decimals=2) == f"1{NB}234,50"
    assert format_number(2, "en", decimals=0) == "2"
    assert format_number(Decimal("2.5"), "en", decimals=0) == "3"  # half-up
    assert format_percent(0.1555, "cs", decimals=1) == f"15,6{NB}%"
    assert format_percent(0.5, "en", decimals=2) == "50.00%"
    with pytest.raises(ValueError):
        format_number(1, "en", decimals=-1)


DATES = [
    ("cs", "1. 6. 2025", "1. června 2025", "1. 6. 2025 14:05:00"),
    ("bg", f"1.06.2025{NNB}г.", f"1 юни 2025{NNB}г.", f"1.06.2025{NNB}г., 14:05:00"),
    ("zh-Hans", "2025年6月1日", "2025年6月1日", "2025年6月1日 14:05:00"),
    ("it", "1 giu 2025", "1 giugno 2025", "1 giu 2025, 14:05:00"),
    ("ru", f"1 июн. 2025{NNB}г.", f"1 июня 2025{NNB}г.", f"1 июн. 2025{NNB}г., 14:05:00"),
    ("en", "Jun 1, 2025", "June 1, 2025", f"Jun 1, 2025, 2:05:00{NNB}PM"),
    ("en-GB", "1 Jun 2025", "1 June 2025", "1 Jun 2025, 14:05:00"),
]


@pytest.mark.parametrize(("loc", "medium", "long", "dtm"), DATES)
def test_dates(loc: str, medium: str, long: str, dtm: str) -> None:
    assert format_date(DAY, loc) == medium
    assert format_date(DAY, loc, "long") == long
    assert format_datetime(WHEN, loc) == dtm


def test_date_inputs() -> None:
    assert format_date(WHEN, "en") == "Jun 1, 2025"  # a datetime's own date
    assert format_date("2025-06-01", "en") == "Jun 1, 2025"
    assert format_date(DAY, "cs", "d. MMMM") == "1. června"  # a CLDR pattern
    assert format_date(DAY, "garbage!!") == "Jun 1, 2025"
    with pytest.raises(ValueError):
        format_date("not a date", "en")
    with pytest.raises(TypeError):
        format_date(3, "en")  # type: ignore[arg-type]


def test_datetime_stays_in_the_users_zone() -> None:
    tokyo = dt.datetime(2025, 6, 1, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert format_datetime(tokyo, "en-GB", "short") == "01/06/2025, 09:30"
    assert format_datetime(tokyo.replace(tzinfo=None), "en-GB", "short") == "01/06/2025, 09:30"
    assert format_datetime("2025-06-01T09:30:00+09:00", "en-GB", "short") == "01/06/2025, 09:30"
    assert "středoevropský letní čas" in format_datetime(WHEN, "cs", "full")


def test_locale_objects_are_accepted() -> None:
    assert format_number(1234, Locale("it")) == "1.234"
