"""A lead's payload is read strictly, by the webhook when it arrives and by the processor
from the stored raw body: NaN, 1e400, huge integers and deep nesting never reach the
mapping (which would copy `nan` or `inf` into the form_submission's fields)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.leads.payload import JSON, PayloadError, parse
from crm_core.strict_json import MAX_DEPTH


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('{"email": "ada@example.com", "score": NaN}', "NaN"),
        ('{"email": "ada@example.com", "score": -Infinity}', "-Infinity"),
        ('{"email": "ada@example.com", "score": 1e400}', "too large"),
        ('{"email": "ada@example.com", "id": ' + "1" * 4301 + "}", "digits"),
        ('{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
        ("[" * 100_000, f"deeper than {MAX_DEPTH}"),
        ('{"email": "ada@example.com",', "not valid JSON"),
    ],
)
def test_what_is_not_json_or_too_deep_is_a_payload_error(body: str, said: str) -> None:
    with pytest.raises(PayloadError, match=said):
        parse(JSON, body)


leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
objects = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        leaves | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=15,
    ),
    max_size=5,
)


@given(objects)
def test_any_json_object_a_form_would_send_reads_as_sent(payload: dict[str, Any]) -> None:
    assert parse(JSON, json.dumps(payload)) == payload
