"""Strict JSON: everything RFC 8259 allows within the bounds reads exactly as Python's json
reads it; everything else is one error, JsonRefused, never RecursionError or a bare
ValueError a caller would not expect."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core import strict_json
from crm_core.strict_json import MAX_DEPTH, JsonRefused

finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(json_values)
def test_json_within_the_bounds_reads_as_python_reads_it(value: Any) -> None:
    text = json.dumps(value)
    assert _depth(value) <= MAX_DEPTH
    assert strict_json.loads(text) == json.loads(text)


@pytest.mark.parametrize("depth", [1, 2, MAX_DEPTH])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_up_to_the_bound_is_read(depth: int, kind: str) -> None:
    opened, closed = ("[", "]") if kind == "array" else ('{"a":', "}")
    inner = "[]" if kind == "array" else "{}"
    text = opened * (depth - 1) + inner + closed * (depth - 1)
    assert _depth(strict_json.loads(text)) == depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_deeper_nesting_is_refused_with_the_bound(depth: int, kind: str) -> None:
    if kind == "array":
        text = "[" * depth + "]" * depth
    elif kind == "object":
        text = '{"a":' * depth + "0" + "}" * depth
    else:
        half = (depth + 1) // 2  # an array and an object per step: at least `depth` levels
        text = '[{"a":' * half + "0" + "}]" * half
    with pytest.raises(JsonRefused, match=f"nested deeper than {MAX_DEPTH} levels"):
        strict_json.loads(text)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_unclosed_nesting_past_the_recursion_limit_is_refused_as_too_deep(depth: int) -> None:
    """Python gives up (RecursionError) before it sees the text end: still a refusal."""
    with pytest.raises(JsonRefused, match=f"nested deeper than {MAX_DEPTH} levels"):
        strict_json.loads("[" * depth)


@pytest.mark.parametrize(
    ("literal", "said"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "too large"),
        ("-1e400", "too large"),
        ("1.8e308", "too large"),
        ("9" * 5000, "digits"),
        ("-" + "9" * 4301, "digits"),
    ],
)
def test_numbers_no_json_client_can_hold_are_refused(literal: str, said: str) -> None:
    for text in (literal, f'{{"x": [{literal}]}}'):
        with pytest.raises(JsonRefused, match=said):
            strict_json.loads(text)


def test_the_largest_and_smallest_numbers_are_read_as_they_are() -> None:
    assert strict_json.loads("1.7976931348623157e308") == 1.7976931348623157e308
    assert strict_json.loads("1e-400") == 0.0  # underflow is zero, a number any client holds
    assert strict_json.loads("9" * 4300) == int("9" * 4300)
    assert not math.isinf(strict_json.loads("-1.7976931348623157e308"))


@given(st.text(max_size=50))
def test_anything_else_is_refused_or_read_but_never_another_error(text: str) -> None:
    try:
        value = strict_json.loads(text)
    except JsonRefused:
        return
    assert value == json.loads(text)


def test_malformed_json_is_a_refusal_of_its_own_kind() -> None:
    """Callers that leave syntax errors to another parser can tell them apart."""
    with pytest.raises(strict_json.NotJson):
        strict_json.loads('{"a": 1,')
    assert issubclass(strict_json.NotJson, JsonRefused)
