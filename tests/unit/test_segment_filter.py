"""A segment filter accepts exactly what its JSON schema allows (the API's OpenAPI document
is generated from it, and clients and fuzzers are held to that document): every list is
bounded by its domain there (`maxItems`) and in the code, and kept once per value."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crm_core.campaigns.segments import MAX_SCORE, SegmentFilter
from crm_core.records.contact import EmailConsent, LifecycleStage

SCHEMA = SegmentFilter.model_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _accepted(value: dict[str, Any]) -> bool:
    try:
        SegmentFilter.model_validate(value)
    except ValidationError:
        return False
    return True


def _list_schema(name: str) -> dict[str, Any]:
    (schema,) = [s for s in SCHEMA["properties"][name]["anyOf"] if s.get("type") == "array"]
    return schema


def test_every_list_says_its_bound_in_the_schema() -> None:
    assert _list_schema("lifecycle_stage")["maxItems"] == len(LifecycleStage) == 8
    assert _list_schema("email_consent")["maxItems"] == len(EmailConsent) == 3
    assert _list_schema("country")["maxItems"] == 250
    tags = SCHEMA["$defs"]["TagFilter"]["properties"]
    for name in ("any", "all", "none"):
        (listed,) = [s for s in tags[name]["anyOf"] if s.get("type") == "array"]
        assert listed["maxItems"] == 20


scores = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**12), 10**12),
    st.sampled_from([0, -0.0, 1e-15, -1e-15, 9.9e-16, 1e-300, MAX_SCORE, -MAX_SCORE, 1e9 + 1]),
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "lifecycle_stage": st.lists(st.sampled_from([str(s) for s in LifecycleStage]), max_size=12),
        "email_consent": st.lists(st.sampled_from([str(c) for c in EmailConsent]), max_size=5),
        "country": st.lists(st.sampled_from(["DE", "FR", "US", "JP"]), max_size=260),
        "min_score": scores,
    },
)


@given(filters)
def test_the_code_accepts_exactly_what_the_schema_allows(value: dict[str, Any]) -> None:
    assert _accepted(value) == VALIDATOR.is_valid(value), value


@given(filters)
def test_lists_keep_each_value_once_in_the_order_first_given(value: dict[str, Any]) -> None:
    if not _accepted(value):
        return
    parsed = SegmentFilter.model_validate(value)
    for name in ("lifecycle_stage", "email_consent", "country"):
        if name in value:
            assert getattr(parsed, name) == list(dict.fromkeys(value[name]))


def test_a_repeated_stage_cannot_multiply_the_reads() -> None:
    """8,000 copies of one stage once made 8,000 Queries per preview."""
    with pytest.raises(ValidationError, match="at most 8 items"):
        SegmentFilter.model_validate({"lifecycle_stage": ["sql"] * 8000})
    assert SegmentFilter.model_validate({"lifecycle_stage": ["sql"] * 8}).lifecycle_stage == [
        LifecycleStage.SQL
    ]
