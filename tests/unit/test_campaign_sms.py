"""SMS segment counting and cost (providers.md §4.2, analytics.md §15)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcrm.campaigns.sms import (
    GSM_BASIC,
    GSM_EXTENSION,
    SmsInfo,
    sms_cost,
    sms_segments,
)

# providers.md §4.2 test vectors, plus the boundaries either side of each limit
VECTORS = [
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),
    ("€" * 81, "GSM-7", 162, 2),
    ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # naive count says 2
    ("ё" * 70, "UCS-2", 70, 1),
    ("ё" * 71, "UCS-2", 71, 2),
    ("ё" * 134, "UCS-2", 134, 2),
    ("ё" * 135, "UCS-2", 135, 3),
    ("😀" * 35, "UCS-2", 70, 1),
    ("😀" * 36, "UCS-2", 72, 2),
    ("", "GSM-7", 0, 0),
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), VECTORS)
def test_reference_vectors(text: str, encoding: str, units: int, segments: int) -> None:
    info = sms_segments(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_surrogate_pair_never_split() -> None:
    # 66 units then an emoji (2 units): the emoji does not fit in part 1's last unit
    info = sms_segments("ж" * 66 + "😀" + "ж" * 66)
    assert info.units == 134
    assert info.segments == 3  # 66 | 2+65 | 1


def test_boundaries_gsm_and_ucs2() -> None:
    assert sms_segments("x" * 159).segments == 1
    assert sms_segments("x" * 160).segments == 1
    assert sms_segments("x" * 161).segments == 2
    assert sms_segments("ж" * 69).segments == 1
    assert sms_segments("ж" * 70).segments == 1
    assert sms_segments("ж" * 71).segments == 2
    assert sms_segments("ж" * 201).segments == 3
    assert sms_segments("ж" * 202).segments == 4


def test_czech_diacritics_force_ucs2() -> None:
    info = sms_segments("Dobrý den, máme pro vás slevu. Děkujeme, že nakupujete u nás! č")
    assert info.encoding == "UCS-2"
    assert info.ucs2_chars == ("ý", "á", "ě", "ž", "č")
    assert sms_segments("Ahoj Petře").ucs2_chars == ("ř",)


def test_italian_accents_stay_gsm() -> None:
    text = "Ciao! Perché non torni? Città, caffè, sì, però, più: àèéìòù"
    assert sms_segments(text) == SmsInfo("GSM-7", len(text), 1)


def test_cyrillic_and_chinese_are_ucs2() -> None:
    bg = sms_segments("Здравейте! Имаме отстъпка за вас.")
    ru = sms_segments("Здравствуйте! Ещё скидка для вас.")
    zh = sms_segments("您好！我们为您准备了优惠。")
    assert bg.encoding == ru.encoding == zh.encoding == "UCS-2"
    assert zh.units == 13
    assert "ё" in ru.ucs2_chars
    assert zh.ucs2_chars[0] == "您"
    # a Cyrillic look-alike of a Latin letter is still Cyrillic
    assert sms_segments("\u0410BC").ucs2_chars == ("\u0410",)


def test_greek_capitals_are_gsm() -> None:
    assert sms_segments("ΔΦΓΛΩΠΨΣΘΞ").encoding == "GSM-7"


def test_smart_quotes_and_dashes_force_ucs2_and_are_reported() -> None:
    info = sms_segments("It’s “on” — now – or never’")
    assert info.encoding == "UCS-2"
    assert info.ucs2_chars == ("’", "“", "”", "—", "–")
    assert sms_segments('It\'s "on" - now').encoding == "GSM-7"


def test_extension_characters_cost_two() -> None:
    info = sms_segments("{}[]~|^\\€\f")
    assert (info.encoding, info.units, info.segments) == ("GSM-7", 20, 1)
    assert info.ucs2_chars == ()


def test_newlines_are_gsm() -> None:
    assert sms_segments("a\r\nb").units == 4


def test_capacities() -> None:
    assert (sms_segments("a").single_limit, sms_segments("a").per_part) == (160, 153)
    assert (sms_segments("ж").single_limit, sms_segments("ж").per_part) == (70, 67)


def test_cost() -> None:
    assert sms_cost(3, None) is None
    assert sms_cost(3, Decimal("0.0075")) == Decimal("0.0225")
    assert sms_cost(0, Decimal("0.05")) == Decimal("0")
    with pytest.raises(ValueError):
        sms_cost(-1, Decimal("0.05"))
    with pytest.raises(ValueError):
        sms_cost(1, Decimal("-0.05"))


def _greedy_parts(text: str, gsm: bool, part: int) -> list[list[int]]:
    """An independent packer: the unit costs of each part."""
    parts: list[list[int]] = [[]]
    for c in text:
        u = (2 if c in GSM_EXTENSION else 1) if gsm else len(c.encode("utf-16-le")) // 2
        if sum(parts[-1]) + u > part:
            parts.append([])
        parts[-1].append(u)
    return parts


_alphabet = st.sampled_from(
    sorted(GSM_BASIC) + sorted(GSM_EXTENSION) + list("жё’“😀您č") + ["\U0001f469"]
)
_texts = st.one_of(
    st.text(alphabet=st.sampled_from(sorted(GSM_BASIC | GSM_EXTENSION)), max_size=700),
    st.text(alphabet=_alphabet, max_size=400),
    st.text(max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_segments_consistent_with_units(text: str) -> None:
    info = sms_segments(text)
    gsm = info.encoding == "GSM-7"
    assert gsm == (info.ucs2_chars == ())
    assert gsm == all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)
    costs = [
        (2 if c in GSM_EXTENSION else 1) if gsm else len(c.encode("utf-16-le")) // 2 for c in text
    ]
    assert info.units == sum(costs)
    assert set(info.ucs2_chars) == {c for c in text if c not in GSM_BASIC | GSM_EXTENSION}
    assert len(set(info.ucs2_chars)) == len(info.ucs2_chars)
    single, part = info.single_limit, info.per_part
    if info.units == 0:
        assert info.segments == 0
    elif info.units <= single:
        assert info.segments == 1
    else:
        # every unit fits, and each closed part wasted at most one unit (a 2-unit pair that
        # did not fit), so the count is within ceil(units/part) .. ceil(units/(part-1))
        assert info.segments >= 2
        assert info.segments * part >= info.units
        assert (info.segments - 1) * (part - 1) < info.units
        assert info.segments == len(_greedy_parts(text, gsm, part))
        assert all(sum(p) <= part for p in _greedy_parts(text, gsm, part))


@settings(max_examples=200, deadline=None)
@given(_texts, _alphabet)
def test_appending_never_reduces_segments(text: str, extra: str) -> None:
    a, b = sms_segments(text), sms_segments(text + extra)
    if a.encoding == b.encoding:
        assert b.segments >= a.segments
        assert b.units > a.units
