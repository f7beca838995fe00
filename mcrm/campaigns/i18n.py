"""Money, numbers, percentages and dates in a user's locale (Babel / CLDR).

Why this shape:

- **Locale tags come from user data**, so they are anything: `cs`, `cs-CZ`, `cs_CZ`, `zh-Hans`,
  `zh-CN`, `en_US.UTF-8`, `EN`, NULL, `garbage!!`. `babel_locale` never raises: it normalises
  separators and case, drops a POSIX `.codeset`/`@modifier`, then tries the tag and ever
  shorter prefixes (`cs-XX` -> `cs`), and finally the fallback (itself falling back to `en`).
  Results are cached, since a send formats hundreds of thousands of messages over a handful of
  distinct tags.
- **Minimum grouping digits.** CLDR says Bulgarian, Spanish, Polish and European Portuguese do
  not group four-digit numbers (`1234,50 лв.`, but `12 345,50 лв.`); ICU honours that, Babel
  2.x carries no such data and groups them anyway. `MIN_GROUPING_2` fills the gap for those
  locales, so a Bulgarian user sees what their phone's own formatter would show.
- **Currency spacing.** CLDR puts an NBSP between a letter currency symbol and a digit
  (`CZK 150.00` in English); Babel does not, so `format_money` adds it.
- **Rounding is half-up** for display (0.125 EUR shows as 0.13 €); Babel's default would be the
  decimal module's banker's rounding, which surprises people reading prices.
- Money is a `Decimal` (a `str` is parsed as one, a float goes through `repr` so 0.1 stays 0.1);
  the currency's own digits apply (JPY has none). Percentages take a fraction (0.15 -> 15 %).
- Datetimes are formatted as given: the caller has already moved them into the user's zone
  (a naive datetime is taken as wall time), so `long`/`full` formats name that zone.

`fmt` for dates is a CLDR width (`short`, `medium`, `long`, `full`) or a CLDR pattern
(`d. MMMM`). Errors are `ValueError`/`TypeError` with messages that never echo the value (it may
be personal data); the template layer turns them into a `TemplateError` naming file and line.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError

if TYPE_CHECKING:
    from babel.numbers import NumberPattern

MIN_GROUPING_2 = frozenset({("bg", None), ("es", None), ("pl", None), ("pt", "PT")})
"""(language, territory) whose CLDR minimumGroupingDigits is 2 (territory None: all)."""

_NOT_LANGUAGES = frozenset({"c", "posix", "und", "root"})
_TAG_RE = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")

Number = int | float | Decimal | str


def _subtags(tag: str) -> list[str]:
    """`zh_hans-cn.UTF-8` -> ['zh', 'Hans', 'CN']; [] when it is not a tag at all."""
    tag = tag.strip().split(".", 1)[0].split("@", 1)[0]
    if not _TAG_RE.match(tag):
        return []
    out: list[str] = []
    for i, p in enumerate(re.split(r"[-_]", tag)):
        if i == 0:
            out.append(p.lower())
        elif len(p) == 4 and p.isalpha():
            out.append(p.title())
        elif len(p) in (2, 3) and (p.isalpha() or p.isdigit()):
            out.append(p.upper())
        else:
            out.append(p)
    return out


def normalize_tag(tag: str | None) -> str | None:
    """A BCP 47-style spelling of `tag` (`cs_cz` -> `cs-CZ`), or None for no / garbage tag."""
    if not tag or not isinstance(tag, str):
        return None
    parts = _subtags(tag)
    return "-".join(parts) if parts and parts[0] not in _NOT_LANGUAGES else None


@lru_cache(maxsize=1024)
def _parse(tag: str) -> Locale | None:
    parts = _subtags(tag)
    if not parts or parts[0] in _NOT_LANGUAGES:
        return None
    while parts:
        try:
            return Locale.parse("_".join(parts))
        except (ValueError, TypeError, UnknownLocaleError):
            parts = parts[:-1]
    return None


@lru_cache(maxsize=1024)
def babel_locale(tag: str | None, fallback: str = "en") -> Locale:
    """The Babel locale for an mcrm locale tag; unknown or garbage tags give `fallback`
    (and an unknown fallback gives `en`). Never raises."""
    if isinstance(tag, str):
        got = _parse(tag)
        if got is not None:
            return got
    return _parse(fallback) or Locale("en")


def _loc(locale: Locale | str | None) -> Locale:
    return locale if isinstance(locale, Locale) else babel_locale(locale)


def _group(loc: Locale, value: Decimal) -> bool:
    """Whether digit grouping applies (CLDR minimumGroupingDigits)."""
    if (loc.language, None) in MIN_GROUPING_2 or (loc.language, loc.territory) in MIN_GROUPING_2:
        return abs(value) >= 10000
    return True


def to_decimal(x: Any, what: str = "number") -> Decimal:
    """`x` as a Decimal; floats via repr (0.1 stays 0.1). TypeError/ValueError otherwise."""
    if isinstance(x, bool) or x is None:
        raise TypeError(f"{what} expected, got {type(x).__name__}")
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, int):
        d = Decimal(x)
    elif isinstance(x, float):
        d = Decimal(repr(x))
    elif isinstance(x, str):
        try:
            d = Decimal(x.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{what} expected, got a string that is not one") from None
    else:
        raise TypeError(f"{what} expected, got {type(x).__name__}")
    if not d.is_finite():
        raise ValueError(f"finite {what} expected")
    return d


def _half_up() -> decimal.Context:
    return decimal.Context(prec=40, rounding=decimal.ROUND_HALF_UP)


def format_money(amount: Number, currency: str, locale: Locale | str | None) -> str:
    """`1234.5, "CZK", "cs"` -> `1 234,50 Kč` (NBSPs), with the currency's own digits."""
    import babel.numbers

    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ValueError("currency must be a three-letter ISO 4217 code")
    loc = _loc(locale)
    d = to_decimal(amount, "amount")
    code = currency.upper()
    with decimal.localcontext(_half_up()):
        out = babel.numbers.format_currency(d, code, locale=loc, group_separator=_group(loc, d))
    return _currency_spacing(out, loc.currency_symbols.get(code, code))


def _currency_spacing(text: str, symbol: str) -> str:
    """CLDR currencySpacing, which Babel does not apply: a symbol that ends (starts) with a
    letter gets an NBSP before an adjacent digit: `CZK150.00` -> `CZK 150.00` (en), as ICU
    and phones show it; `€150.00` and `$5` are left alone."""
    i = text.find(symbol)
    if i < 0 or not symbol:
        return text
    j = i + len(symbol)
    if j < len(text) and text[j].isdigit() and not _is_symbol_or_space(symbol[-1]):
        text = f"{text[:j]}\u00a0{text[j:]}"
    if i > 0 and text[i - 1].isdigit() and not _is_symbol_or_space(symbol[0]):
        text = f"{text[:i]}\u00a0{text[i:]}"
    return text


def _is_symbol_or_space(c: str) -> bool:
    return unicodedata.category(c)[0] in "SZ"


def _with_fraction(pattern: NumberPattern, decimals: int) -> NumberPattern:
    p = copy.copy(pattern)
    p.frac_prec = (decimals, decimals)
    return p


def format_number(x: Number, locale: Locale | str | None, decimals: int | None = None) -> str:
    """`1234567.891` -> `1 234 567,891` (cs); `decimals` fixes the number of fraction digits
    (default: as many as needed, at most three)."""
    import babel.numbers

    loc = _loc(locale)
    if type(x) is int and x >= 0 and not decimals:
        sep = _int_group_separator(loc)
        if sep is not None:  # the common case, without Babel's per-call pattern machinery
            if x < 10000 and not _group(loc, Decimal(x)):
                return str(x)
            return f"{x:,}".replace(",", sep)
    d = to_decimal(x)
    group = _group(loc, d)
    with decimal.localcontext(_half_up()):
        if decimals is None:
            return babel.numbers.format_decimal(d, locale=loc, group_separator=group)
        pattern = loc.decimal_formats[None]
        out = _with_fraction(pattern, _decimals(decimals)).apply(d, loc, group_separator=group)
        return str(out)


@lru_cache(maxsize=256)
def _int_group_separator(loc: Locale) -> str | None:
    """The group separator when the locale's decimal pattern is plain `#,##0.###` (groups of
    three, no prefix or suffix), else None (Indian lakh grouping and the like go to Babel)."""
    pattern = loc.decimal_formats[None]
    if pattern.grouping != (3, 3) or pattern.prefix != ("", "-") or pattern.suffix != ("", ""):
        return None
    sep = str(loc.number_symbols["latn"]["group"])
    return sep if sep in (",", ".", "\u00a0", "\u202f", " ") else None


def format_percent(x: Number, locale: Locale | str | None, decimals: int = 0) -> str:
    """A fraction as a percentage: `0.15` -> `15 %` (cs, NBSP), `15%` (en)."""
    loc = _loc(locale)
    d = to_decimal(x)
    pattern = _with_fraction(loc.percent_formats[None], _decimals(decimals))
    with decimal.localcontext(_half_up()):
        return str(pattern.apply(d, loc, group_separator=_group(loc, d * 100)))


def _decimals(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 12:
        raise ValueError("decimals must be an integer from 0 to 12")
    return n


def _as_date(d: Any) -> dt.date:
    if isinstance(d, dt.date):  # a datetime is a date too
        return d
    if isinstance(d, str):
        try:
            return dt.date.fromisoformat(d.strip()[:10])
        except ValueError:
            raise ValueError("date expected, got a string that is not an ISO date") from None
    raise TypeError(f"date expected, got {type(d).__name__}")


def _as_datetime(x: Any) -> dt.datetime:
    if isinstance(x, dt.datetime):
        return x
    if isinstance(x, dt.date):
        return dt.datetime(x.year, x.month, x.day)
    if isinstance(x, str):
        try:
            return dt.datetime.fromisoformat(x.strip())
        except ValueError:
            raise ValueError("datetime expected, got a string that is not ISO 8601") from None
    raise TypeError(f"datetime expected, got {type(x).__name__}")


def format_date(d: dt.date | str, locale: Locale | str | None, fmt: str = "medium") -> str:
    """`2025-06-01` -> `1. 6. 2025` (cs medium), `Jun 1, 2025` (en medium)."""
    import babel.dates

    day = _as_date(d)
    if isinstance(day, dt.datetime):
        day = day.date()
    return babel.dates.format_date(day, format=fmt, locale=_loc(locale))


def format_datetime(
    dt_aware: dt.datetime | str, locale: Locale | str | None, fmt: str = "medium"
) -> str:
    """A datetime already in the user's zone, in that zone: `1. 6. 2025 14:05:00` (cs)."""
    import babel.dates

    when = _as_datetime(dt_aware)
    loc = _loc(locale)
    if when.tzinfo is None:
        # wall time: format in a zone that does not move it (babel assumes UTC for naive)
        return babel.dates.format_datetime(when.replace(tzinfo=dt.UTC), format=fmt, locale=loc)
    return babel.dates.format_datetime(when, format=fmt, tzinfo=when.tzinfo, locale=loc)
