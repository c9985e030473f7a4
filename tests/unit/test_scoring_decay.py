"""The decay of engagement (crm_core/scores/decay.py): what an index of stored values
must be able to rely on, at any moment and over any span of years."""

from __future__ import annotations

import math

from hypothesis import assume, given
from hypothesis import strategies as st

from crm_core.scores import decay
from crm_core.scores.decay import NONE, Engagement

TEN_YEARS = 10 * 365.25 * decay.DAY
half_lives = st.sampled_from([1.0, 7.0, 30.0, 90.0, 365.0]) | st.floats(0.5, 3650)
moments = st.floats(decay.EPOCH - TEN_YEARS, decay.EPOCH + TEN_YEARS)
points = st.integers(-100, 1000).filter(lambda p: p != 0) | st.floats(0.01, 1e6)
events = st.lists(st.tuples(points, moments), max_size=30)


def built(history: list[tuple[float, float]], half_life: float) -> Engagement:
    engagement = NONE
    for earned, at in history:
        engagement = decay.add(engagement, earned, at, half_life)
    return engagement


def direct(history: list[tuple[float, float]], now: float, half_life: float) -> float:
    """The engagement computed plainly: each point decayed from its own time to now."""
    return sum(p * 2 ** (-(now - t) / (half_life * decay.DAY)) for p, t in history)


@given(events, moments, half_lives)
def test_the_stored_value_decays_to_the_plain_sum(
    history: list[tuple[float, float]], now: float, half_life: float
) -> None:
    # Only points earned before `now` count in a score; they decay by at most 2 ** -7300
    # over ten years of one-day half-lives, well inside floating point for the plain sum.
    history = [(p, t) for p, t in history if t <= now]
    engagement = built(history, half_life)
    expected = direct(history, now, half_life)
    scale = sum(abs(p) * 2 ** (-(now - t) / (half_life * decay.DAY)) for p, t in history)
    # Below 1e-300 floats are subnormal and keep fewer digits than 1e-9 of relative error
    # (hypothesis found 1.58619208e-315 against 1.586192074e-315): no score is that small.
    tolerance = max(1e-9 * scale, 1e-300)
    assert math.isclose(decay.value_at(engagement, now, half_life), expected, abs_tol=tolerance)


@given(events, moments, half_lives)
def test_nothing_overflows_in_ten_years_either_way(
    history: list[tuple[float, float]], now: float, half_life: float
) -> None:
    engagement = built(history, half_life)
    assert len(decay.sort_key(engagement)) == 18
    assert len(decay.threshold_key(50, now, half_life)) == 18
    assert math.isfinite(engagement.log2)


@given(events, events, moments, half_lives)
def test_the_order_of_stored_values_is_the_order_at_any_moment(
    one: list[tuple[float, float]],
    other: list[tuple[float, float]],
    now: float,
    half_life: float,
) -> None:
    a, b = built(one, half_life), built(other, half_life)
    value_a, value_b = decay.value_at(a, now, half_life), decay.value_at(b, now, half_life)
    assume(math.isfinite(value_a) and math.isfinite(value_b))
    # Values within a relative 1e-8 are equal as far as keys go (9 decimals of log2).
    assume(not math.isclose(value_a, value_b, rel_tol=1e-8, abs_tol=1e-300))
    if value_a < value_b:
        assert decay.sort_key(a) < decay.sort_key(b)
    else:
        assert decay.sort_key(a) > decay.sort_key(b)


@given(events, st.floats(0.01, 1e5), moments, half_lives)
def test_a_threshold_now_is_a_key_range_of_stored_values(
    history: list[tuple[float, float]], threshold: float, now: float, half_life: float
) -> None:
    engagement = built(history, half_life)
    value = decay.value_at(engagement, now, half_life)
    assume(not math.isclose(value, threshold, rel_tol=1e-8))
    key_says = decay.sort_key(engagement) >= decay.threshold_key(threshold, now, half_life)
    assert key_says == (value >= threshold)


@given(points, moments, half_lives)
def test_a_point_halves_every_half_life(earned: float, at: float, half_life: float) -> None:
    engagement = decay.add(NONE, earned, at, half_life)
    later = at + half_life * decay.DAY
    assert math.isclose(decay.value_at(engagement, at, half_life), earned, rel_tol=1e-9)
    assert math.isclose(decay.value_at(engagement, later, half_life), earned / 2, rel_tol=1e-9)


def test_points_taken_away_can_make_it_negative_or_nothing() -> None:
    at = decay.EPOCH + 100 * decay.DAY
    plus_ten = decay.add(NONE, 10, at, 30)
    assert decay.add(plus_ten, -10, at, 30) == NONE
    minus_five = decay.add(plus_ten, -15, at, 30)
    assert math.isclose(decay.value_at(minus_five, at, 30), -5, rel_tol=1e-9)
    keys = [decay.sort_key(e) for e in (minus_five, NONE, plus_ten)]
    assert keys == sorted(keys)
    assert decay.sort_key(decay.add(NONE, -20, at, 30)) < keys[0]


@given(events, half_lives)
def test_a_sort_key_gives_back_its_engagement(
    history: list[tuple[float, float]], hl: float
) -> None:
    engagement = built(history, hl)
    back = decay.from_sort_key(decay.sort_key(engagement))
    assert back.sign == engagement.sign
    if not engagement.is_zero:
        assert abs(back.log2 - engagement.log2) <= 1e-8  # the key keeps about 9 decimals
        assert decay.sort_key(back) == decay.sort_key(engagement)
