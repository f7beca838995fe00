"""SMS segment counting (GSM-7 / UCS-2) and cost, per providers.md §4.2 and analytics.md §15.

Why this shape:

- The encoding is decided for the *whole* message: GSM-7 only if every character is in the GSM
  03.38 basic or extension table, otherwise UCS-2 (one emoji, `ё` or curly quote suffices).
  `SmsInfo.ucs2_chars` lists the distinct characters that forced UCS-2, in order of appearance,
  so a preview can say "replace ’ with '" instead of just "3 segments".
- Units are septets for GSM-7 (extension characters cost 2: ESC + char) and UTF-16 code units
  for UCS-2 (a character outside the BMP costs 2). `len(text)` is wrong for both.
- Concatenated parts hold 153 septets / 67 units (the UDH takes the rest). Parts are packed
  greedily and an escape pair or surrogate pair never straddles two parts, so a 2-unit
  character that does not fit opens a new part: `"a"*152 + "€" + "a"*152` is 3 segments, not 2.
- Python strings iterate by code point, so a surrogate pair is one iteration step; a ZWJ emoji
  sequence is several code points and is counted (and may be split) code point by code point,
  as carriers do.

Pure functions, no I/O; the counting runs on every recipient's rendered body in a plan, so it
avoids per-character allocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet (127 characters plus the ESC code, which is not text)."""

GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: each costs 2 septets (ESC + code)."""

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsInfo:
    """How an SMS body is encoded and how many segments (billed parts) it takes."""

    encoding: Encoding
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int
    """Number of parts; 0 for an empty body."""
    ucs2_chars: tuple[str, ...] = ()
    """Distinct characters outside GSM-7, in order of appearance (empty for GSM-7)."""

    @property
    def per_part(self) -> int:
        """Capacity of one part of a concatenated message in this encoding."""
        return GSM_PART if self.encoding == "GSM-7" else UCS2_PART

    @property
    def single_limit(self) -> int:
        """Capacity of a single-part message in this encoding."""
        return GSM_SINGLE if self.encoding == "GSM-7" else UCS2_SINGLE


def _ucs2_forcing(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for c in text:
        if c not in GSM_BASIC and c not in GSM_EXTENSION and c not in seen:
            seen[c] = None
    return tuple(seen)


def _count(units: list[int], single: int, part: int) -> tuple[int, int]:
    total = sum(units)
    if total <= single:
        return total, (1 if total else 0)
    segments, used = 1, 0
    for u in units:  # greedy; a pair that does not fit opens a new part
        if used + u > part:
            segments, used = segments + 1, 0
        used += u
    return total, segments


def sms_segments(text: str) -> SmsInfo:
    """Encoding, units and segment count of `text` (providers.md §4.2)."""
    forcing = _ucs2_forcing(text)
    if not forcing:
        units = [2 if c in GSM_EXTENSION else 1 for c in text]
        total, segments = _count(units, GSM_SINGLE, GSM_PART)
        return SmsInfo("GSM-7", total, segments)
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]
    total, segments = _count(units, UCS2_SINGLE, UCS2_PART)
    return SmsInfo("UCS-2", total, segments, forcing)


def sms_cost(segments: int, price_per_segment: Decimal | None) -> Decimal | None:
    """`segments × price`, or None when no price per segment is configured.

    Exact decimal arithmetic (money is never a float); a negative count or price is a bug in
    the caller and raises ValueError.
    """
    if price_per_segment is None:
        return None
    if segments < 0:
        raise ValueError(f"negative segment count: {segments}")
    if price_per_segment < 0:
        raise ValueError(f"negative price per segment: {price_per_segment}")
    return Decimal(segments) * price_per_segment
