"""Engagement that decays with a half-life, kept so that no job ever rewrites it.

Every contact's engagement decays by the same factor over the same time, so it is stored
scaled to one fixed reference time, `EPOCH`: a point earned at time t counts
2 ** ((t - EPOCH) / half_life) at the reference. The engagement at any moment is the stored
value times 2 ** -((now - EPOCH) / half_life), the same factor for every contact, hence:
- the order of contacts by stored value is their order by engagement, at every moment;
- "engagement >= y now" is "stored >= y * 2 ** ((now - EPOCH) / half_life)": a key range.

Stored plainly, the scaled value would overflow within years (2 ** 3650 after ten years of
a one-day half-life), so it is kept as a sign and a base-2 logarithm, and points are added
in that form (log-sum-exp): the logarithm grows only linearly with time. A sum can be
negative (rules may take points away), hence the sign. `sort_key` writes the value as
fixed-width text that sorts as the value does, for an index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# 2026-01-01T00:00:00Z: the reference time of every stored engagement.
EPOCH = 1_767_225_600.0
DAY = 86_400.0
# The half-lives a model may have, in days.
MIN_HALF_LIFE, MAX_HALF_LIFE = 1, 3650
# Logarithms (base 2) of stored values are written with 9 decimals, shifted by OFFSET so
# that every one this CRM can hold is positive: a century of a one-hour half-life is about
# 877,000, and a single rule's points at most 2 ** 40.
_DECIMALS = 10**9
_OFFSET = 10**7
_WIDTH = 17  # digits of (log2 + OFFSET) * 10**9 below 2 * OFFSET
_MAX_FIELD = 10**_WIDTH - 1


@dataclass(frozen=True)
class Engagement:
    """sign * 2 ** log2: the engagement at the reference time (sign 0: none at all)."""

    sign: int = 0
    log2: float = 0.0

    @property
    def is_zero(self) -> bool:
        return self.sign == 0


NONE = Engagement()


def exponent(seconds: float, half_life_days: float) -> float:
    """How many half-lives `seconds` (epoch time) lies after the reference time."""
    return (seconds - EPOCH) / (half_life_days * DAY)


def add(engagement: Engagement, points: float, at: float, half_life_days: float) -> Engagement:
    """`engagement` plus `points` earned at `at` (epoch seconds)."""
    if points == 0:
        return engagement
    term = Engagement(
        1 if points > 0 else -1, math.log2(abs(points)) + exponent(at, half_life_days)
    )
    return _sum(engagement, term)


def _sum(a: Engagement, b: Engagement) -> Engagement:
    if a.is_zero:
        return b
    if b.is_zero:
        return a
    big, small = (a, b) if a.log2 >= b.log2 else (b, a)
    gap = small.log2 - big.log2  # <= 0
    if big.sign == small.sign:
        return Engagement(big.sign, big.log2 + math.log2(1 + 2**gap))
    if gap == 0:
        return NONE  # equal and opposite
    return Engagement(big.sign, big.log2 + math.log2(1 - 2**gap))


def value_at(engagement: Engagement, now: float, half_life_days: float) -> float:
    """The engagement at `now` (epoch seconds): the stored value, decayed."""
    if engagement.is_zero:
        return 0.0
    power = engagement.log2 - exponent(now, half_life_days)
    return engagement.sign * 2.0**power if power < 1024 else engagement.sign * math.inf


def sort_key(engagement: Engagement) -> str:
    """Fixed-width text that sorts as the stored value: negatives (N) below zero (O) below
    positives (P), the larger magnitude further from zero."""
    if engagement.is_zero:
        return "O" + "0" * _WIDTH
    field = round((engagement.log2 + _OFFSET) * _DECIMALS)
    if not 0 <= field <= _MAX_FIELD:
        raise ValueError(f"an engagement of 2 ** {engagement.log2} is out of range")
    if engagement.sign > 0:
        return f"P{field:0{_WIDTH}d}"
    return f"N{_MAX_FIELD - field:0{_WIDTH}d}"


def from_sort_key(key: str) -> Engagement:
    """The engagement a `sort_key` stands for (its logarithm to the key's 9 decimals)."""
    kind, digits = key[:1], key[1 : 1 + _WIDTH]
    if kind == "O":
        return NONE
    field = int(digits) if kind == "P" else _MAX_FIELD - int(digits)
    return Engagement(1 if kind == "P" else -1, field / _DECIMALS - _OFFSET)


def threshold_key(points: float, now: float, half_life_days: float) -> str:
    """The key of an engagement worth exactly `points` at `now`: stored engagements whose
    key is at least this one are worth at least `points` now."""
    if points == 0:
        return sort_key(NONE)
    return sort_key(
        Engagement(1 if points > 0 else -1, math.log2(abs(points)) + exponent(now, half_life_days))
    )
