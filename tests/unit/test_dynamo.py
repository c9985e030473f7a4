"""Attribute values: what we store comes back as it went in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.dynamo import from_attr, from_item, key_attrs, to_attr, to_item

# What the API stores: JSON values within the numbers fields.py admits.
scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=40)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with a bool never equal to a number (Python's == says True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


@given(values)
def test_round_trip(value: Any) -> None:
    assert same(from_attr(to_attr(value)), value)


@given(st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=8))
def test_item_round_trip_leaves_out_none(item: dict[str, Any]) -> None:
    stored = to_item(item)
    assert all(v != {"NULL": True} for v in stored.values())
    assert same(from_item(stored), {k: v for k, v in item.items() if v is not None})


@pytest.mark.parametrize(
    ("value", "attr"),
    [
        (None, {"NULL": True}),
        (True, {"BOOL": True}),
        (0, {"N": "0"}),
        (2.0, {"N": "2"}),
        (1.5, {"N": "1.5"}),
        (Decimal("3.25"), {"N": "3.25"}),
        ("x", {"S": "x"}),
        ((1, "a"), {"L": [{"N": "1"}, {"S": "a"}]}),
        ({"a": [None]}, {"M": {"a": {"L": [{"NULL": True}]}}}),
    ],
)
def test_examples(value: Any, attr: dict[str, Any]) -> None:
    assert to_attr(value) == attr


def test_numbers_come_back_as_int_when_whole() -> None:
    assert from_attr({"N": "10"}) == 10
    assert isinstance(from_attr({"N": "10"}), int)
    assert isinstance(from_attr({"N": "10.5"}), float)
    assert from_attr({"SS": ["b", "a"]}) == ["a", "b"]


@pytest.mark.parametrize("value", [{1, 2}, bytearray(b"bytes"), object()])
def test_unsupported_values_are_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        to_attr(value)


def test_unsupported_attribute_types_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        from_attr({"NS": ["1"]})


def test_binary_round_trips() -> None:
    # A forecast month's compressed cells (crm_core/deals/bookkeeping.py).
    assert from_attr(to_attr(b"\x00\x01z")) == b"\x00\x01z"


def test_key_attrs() -> None:
    assert key_attrs({"PK": "T#a#C#1", "SK": "PROFILE"}) == {
        "PK": {"S": "T#a#C#1"},
        "SK": {"S": "PROFILE"},
    }
