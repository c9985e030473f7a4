"""A contact's score as its item keeps it (crm_core/scores/state.py): the `scoring` map
read back as written, ranks read back as named, index keys in score order."""

from __future__ import annotations

import math
import re
import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crm_core.dynamo import from_item, to_item
from crm_core.scores import decay, ranking
from crm_core.scores.decay import NONE, Engagement
from crm_core.scores.state import (
    ScoreState,
    parse_rank,
    rank,
    rank_of,
    ranks_in,
    score_now,
    sort_key,
)
from tests.unit.strategies import ulids

TEN_YEARS = 10 * 365.25 * decay.DAY
moments = st.floats(decay.EPOCH - TEN_YEARS, decay.EPOCH + TEN_YEARS)
# Half-lives a model may have (1 to 3650 days), and some whose repr is awkward.
AWKWARD = [1.5, 0.1 + 0.2, 3650.0, 1.0, 1 / 3, 7.000000000000001, 2**-20, 1e-5, 123456.789]
model_half_lives = st.floats(1, 3650) | st.sampled_from([1.0, 1.5, 30.0, 365.25, 3650.0])
fits = st.integers(-100_000, 100_000)  # 100 rules of at most 1000 points either way
engagements = st.builds(
    Engagement, st.sampled_from([-1, 1]), st.floats(-2000, 2000, allow_nan=False)
) | st.just(NONE)
rule_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
days = st.dates().map(lambda d: d.isoformat())
caps = st.fixed_dictionaries(
    {"total": st.integers(1, 100_000), "days": st.dictionaries(days, st.integers(1, 1000))}
)


@st.composite
def states(draw: st.DrawFn) -> ScoreState:
    """A state as the scorer makes them: a half-life wherever there is engagement (none, or
    the model's, where there is not)."""
    engagement = draw(engagements)
    no_half_life = st.just(0.0) if engagement.is_zero else st.nothing()
    return ScoreState(
        fit=draw(fits),
        engagement=engagement,
        half_life_days=draw(model_half_lives | no_half_life),
        model_version=draw(st.integers(-1, 10_000)),
        seq=draw(st.integers(0, 10**9)),
        behaviour=draw(st.dictionaries(rule_ids, engagements, max_size=5)),
        fit_rules=draw(st.dictionaries(rule_ids, st.integers(-1000, 1000), max_size=5)),
        caps=draw(st.dictionaries(rule_ids, caps, max_size=3)),
        rebuilt_before=draw(st.just(0.0) | moments),
        rebuilt_ids=tuple(draw(st.lists(ulids, max_size=3))),
        updated_at=draw(st.none() | st.just("2026-11-22T10:00:00.000Z")),
    )


# The scoring map ---------------------------------------------------------------------------
@given(states())
def test_the_scoring_map_reads_back_as_written(state: ScoreState) -> None:
    assert ScoreState.of({"scoring": state.attribute()}) == state


@given(states())
def test_the_scoring_map_reads_back_as_dynamodb_stores_it(state: ScoreState) -> None:
    # Numbers travel as text (floats to every digit) and come back as int or float.
    stored = from_item(to_item({"scoring": state.attribute()}))
    back = ScoreState.of(stored)
    assert back == state
    assert back.engagement.log2 == state.engagement.log2
    assert back.half_life_days == state.half_life_days
    assert back.rank == state.rank
    assert back.total_at(decay.EPOCH) == state.total_at(decay.EPOCH)


@pytest.mark.parametrize("item", [{}, {"scoring": None}, {"scoring": {}}, {"id": "x"}])
def test_a_contact_never_scored_has_nothing(item: dict[str, object]) -> None:
    state = ScoreState.of(item)
    assert state == ScoreState()
    assert not state.scored
    assert state.total_at(time.time()) == 0
    assert state.rank == "0.0:0"


def test_an_old_scoring_map_without_the_newer_parts_is_read() -> None:
    state = ScoreState.of({"scoring": {"fit": 3, "model_version": 0}})
    assert (state.fit, state.engagement, state.behaviour, state.caps) == (3, NONE, {}, {})
    assert state.rank == "0.0:3"


# Ranks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("half_life", AWKWARD)
@pytest.mark.parametrize("fit", [0, 12, -7, 100_000, -100_000])
def test_a_rank_names_its_half_life_and_fit_exactly(half_life: float, fit: int) -> None:
    named = rank_of(half_life, fit)
    assert parse_rank(named) == (half_life, fit)
    assert parse_rank(named)[0].hex() == half_life.hex()


def test_ranks_read_as_the_examples_say() -> None:
    assert rank_of(30, 12) == "30.0:12"
    assert rank_of(0, 0) == "0.0:0"
    assert rank_of(0.1 + 0.2, -3) == "0.30000000000000004:-3"
    assert rank_of(3650, 5) == "3650.0:5"
    assert rank_of(1.5, 7.0) == "1.5:7"  # type: ignore[arg-type]


@given(model_half_lives, fits)
def test_every_rank_a_model_can_make_round_trips_and_passes_the_cursor_check(
    half_life: float, fit: int
) -> None:
    # A listing's cursor names its ranks; ranking.py refuses names outside _RANK, so every
    # rank a model can make must fit it, or the second page of its stage is a 400.
    named = rank_of(half_life, fit)
    assert parse_rank(named) == (half_life, fit)
    assert re.fullmatch(ranking._RANK, named), named


@given(states())
def test_a_contact_without_engagement_is_ranked_by_its_fit_alone(state: ScoreState) -> None:
    half_life, fit = parse_rank(state.rank)
    assert fit == state.fit
    if state.engagement.is_zero:
        assert half_life == 0
    else:
        assert half_life == state.half_life_days
    assert rank({"scoring": state.attribute()}) == state.rank


def test_ranks_in_a_registry() -> None:
    assert ranks_in({}) == {"0.0:0"}
    registry = {"PK": "T#acme#SCORING", "SK": "RANKS", "30.0:12": True, "1.5:-3": True}
    assert ranks_in(registry) == {"30.0:12", "1.5:-3", "0.0:0"}
    assert ranks_in({"0.0:0": True, "type": "scoring_ranks"}) == {"0.0:0"}


@given(st.lists(st.tuples(model_half_lives | st.just(0.0), fits), max_size=20))
def test_ranks_in_a_registry_are_every_rank_written_to_it(made: list[tuple[float, int]]) -> None:
    named = {rank_of(h, f) for h, f in made}
    registry = {"PK": "T#acme#SCORING", "SK": "RANKS", **dict.fromkeys(named, True)}
    assert ranks_in(registry) == named | {"0.0:0"}
    assert {parse_rank(r) for r in ranks_in(registry)} == {(float(h), f) for h, f in made} | {
        (0.0, 0)
    }


# The index's sort key ------------------------------------------------------------------------
def item_of(state: ScoreState, contact_id: str) -> dict[str, object]:
    return {"id": contact_id, "scoring": state.attribute()}


def built(history: list[tuple[int, float]], half_life: float) -> Engagement:
    engagement = NONE
    for earned, at in history:
        engagement = decay.add(engagement, earned, at, half_life)
    return engagement


histories = st.lists(st.tuples(st.integers(-100, 100).filter(bool), moments), max_size=8)


@given(histories, histories, ulids, ulids, st.sampled_from([1.5, 30.0, 3650.0]), moments)
def test_the_sort_key_orders_contacts_of_a_rank_by_score_then_id(
    one: list[tuple[int, float]],
    other: list[tuple[int, float]],
    id_a: str,
    id_b: str,
    half_life: float,
    now: float,
) -> None:
    assume(id_a != id_b)
    a = ScoreState(fit=5, engagement=built(one, half_life), half_life_days=half_life)
    b = ScoreState(fit=5, engagement=built(other, half_life), half_life_days=half_life)
    key_a, key_b = sort_key(item_of(a, id_a)), sort_key(item_of(b, id_b))
    assert key_a.endswith(f"#{id_a}")
    assert re.fullmatch(ranking._POSITION, key_a), key_a  # a cursor may name it
    value_a, value_b = a.engagement_at(now), b.engagement_at(now)
    assume(math.isfinite(value_a) and math.isfinite(value_b))
    if a.engagement == b.engagement:
        assert (key_a < key_b) == (id_a < id_b)
        return
    # Values within a relative 1e-8 are equal as far as the key goes (9 decimals of log2).
    assume(not math.isclose(value_a, value_b, rel_tol=1e-8, abs_tol=1e-300))
    assert (key_a < key_b) == (value_a < value_b)


def test_sort_keys_put_negative_below_none_below_positive() -> None:
    at = decay.EPOCH + 40 * decay.DAY
    ladder = [
        decay.add(NONE, -100, at, 30),
        decay.add(NONE, -1, at, 30),
        decay.add(NONE, -1, at - 90 * decay.DAY, 30),
        NONE,
        decay.add(NONE, 1, at - 90 * decay.DAY, 30),
        decay.add(NONE, 1, at, 30),
        decay.add(NONE, 100, at, 30),
    ]
    keys = [sort_key(item_of(ScoreState(engagement=e, half_life_days=30.0), "01J")) for e in ladder]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    # The same engagement: the id decides, as the listing's ties do (the higher id first
    # in a list that runs down the index).
    same = ScoreState(engagement=ladder[-1], half_life_days=30.0)
    low, high = "01JAAAAAAAAAAAAAAAAAAAAAAA", "01JBBBBBBBBBBBBBBBBBBBBBBB"
    assert sort_key(item_of(same, low)) < sort_key(item_of(same, high))


# The score now -------------------------------------------------------------------------------
def test_score_now_is_fit_plus_decayed_engagement_rounded() -> None:
    at = decay.EPOCH + 100 * decay.DAY
    state = ScoreState(
        fit=7, engagement=decay.add(NONE, 10, at, 30.0), half_life_days=30.0, model_version=1
    )
    item = {"scoring": state.attribute()}
    assert score_now(item, at) == 17
    assert score_now(item, at + 30 * decay.DAY) == 12
    assert score_now(item, at + 60 * decay.DAY) == 9.5
    assert score_now(item, at + 10 * decay.DAY) == round(7 + 10 * 2 ** (-1 / 3), 2)
    assert score_now(item, at + 3650 * decay.DAY) == 7
    assert score_now({}, at) == 0


def test_score_now_of_negative_engagement_rises_towards_the_fit() -> None:
    at = decay.EPOCH + 5 * decay.DAY
    state = ScoreState(fit=2, engagement=decay.add(NONE, -25, at, 1.5), half_life_days=1.5)
    item = {"scoring": state.attribute()}
    assert score_now(item, at) == -23
    assert score_now(item, at + 1.5 * decay.DAY) == -10.5
    assert score_now(item, at + 300 * decay.DAY) == 2


def test_score_now_defaults_to_this_moment() -> None:
    state = ScoreState(fit=3, engagement=decay.add(NONE, 8, time.time(), 30.0), half_life_days=30.0)
    assert score_now({"scoring": state.attribute()}) == 11


@given(states(), moments)
def test_score_now_is_the_total_to_two_decimals(state: ScoreState, now: float) -> None:
    total = state.total_at(now)
    assume(math.isfinite(total))
    assert score_now({"scoring": state.attribute()}, now) == round(total, 2)
