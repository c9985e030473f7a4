"""Cursors: what the server hands out decodes to the same key; anything else is a 400."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core import keys, pagination
from crm_core.errors import BadRequest
from crm_core.pagination import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, ListQuery
from tests.unit.strategies import any_text, tenant_ids, ulids

key_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=80)


@st.composite
def listings_and_keys(draw: st.DrawFn) -> tuple[ListQuery, dict[str, Any]]:
    """A list as the stores define one, and a LastEvaluatedKey DynamoDB could return for it."""
    tenant = draw(tenant_ids)
    index = draw(st.sampled_from(sorted(keys.INDEX_KEYS, key=str)))
    partition = draw(
        st.sampled_from(
            [
                keys.contacts_by_updated(tenant),
                keys.contacts_by_stage(tenant, "lead"),
                keys.tag_partition(tenant, "vip"),
                keys.companies_by_name(tenant),
            ]
        )
    )
    listing = ListQuery(
        draw(st.sampled_from(["contacts", "companies", "contacts-by-tag"])),
        partition,
        index if index != "None" else None,
    )
    names = listing.key_names
    last = {names[0]: partition, names[1]: draw(key_text)}
    if len(names) > 2:
        last["PK"] = keys.contact(tenant, draw(ulids))["PK"]
        last["SK"] = keys.PROFILE
    return listing, {k: {"S": v} for k, v in last.items()}


def _decode_or_400(listing: ListQuery, cursor: str) -> dict[str, Any] | None:
    try:
        return listing.decode(cursor)
    except BadRequest:
        return None


@given(listings_and_keys())
def test_round_trip(case: tuple[ListQuery, dict[str, Any]]) -> None:
    listing, last = case
    cursor = listing.encode(last)
    assert cursor is not None
    assert cursor.isascii()
    assert "=" not in cursor
    assert listing.decode(cursor) == last


def test_no_key_no_cursor() -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    assert listing.encode(None) is None
    assert listing.encode({}) is None
    assert listing.decode(None) is None
    with pytest.raises(BadRequest):
        listing.decode("")


@given(listings_and_keys(), st.data())
def test_any_tampering_is_a_bad_request_or_stays_in_the_partition(
    case: tuple[ListQuery, dict[str, Any]], data: st.DataObject
) -> None:
    listing, last = case
    cursor = listing.encode(last)
    assert cursor is not None
    position = data.draw(st.integers(0, len(cursor)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.text(max_size=3))
    tampered = cursor[:position] + insert + cursor[position + cut :]

    decoded = _decode_or_400(listing, tampered)

    if decoded is not None:  # a change base64 cannot see, or none at all
        pk_name = listing.key_names[0]
        assert decoded[pk_name] == {"S": listing.partition}
        assert set(decoded) == set(listing.key_names)


@given(any_text)
def test_any_text_is_a_bad_request(text: str) -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    assert _decode_or_400(listing, text) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_payload_but_a_valid_one_is_a_bad_request(payload: Any) -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    assert _decode_or_400(listing, cursor) is None


@given(st.binary(max_size=200))
def test_any_bytes_are_a_bad_request(raw: bytes) -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    assert _decode_or_400(listing, base64.urlsafe_b64encode(raw).decode()) is None


@given(tenant_ids, tenant_ids, ulids)
def test_a_cursor_of_another_tenant_is_a_bad_request(a: str, b: str, contact_id: str) -> None:
    if a == b:
        return
    mine = ListQuery("contacts", keys.contacts_by_updated(a), "GSI1")
    theirs = ListQuery("contacts", keys.contacts_by_updated(b), "GSI1")
    cursor = mine.encode(
        {
            "GSI1PK": {"S": keys.contacts_by_updated(a)},
            "GSI1SK": {"S": keys.time_sort_key("2026-01-01T00:00:00.000Z", contact_id)},
            **{k: {"S": v} for k, v in keys.contact(a, contact_id).items()},
        }
    )
    assert cursor is not None
    with pytest.raises(BadRequest):
        theirs.decode(cursor)


def test_a_cursor_of_another_list_is_a_bad_request() -> None:
    tag = ListQuery("contacts-by-tag", keys.tag_partition("acme", "vip"))
    other_tag = ListQuery("contacts-by-tag", keys.tag_partition("acme", "gold"))
    renamed = ListQuery("contacts", keys.tag_partition("acme", "vip"))
    cursor = tag.encode({"PK": {"S": keys.tag_partition("acme", "vip")}, "SK": {"S": "C#1"}})
    assert cursor is not None
    for listing in (other_tag, renamed):
        with pytest.raises(BadRequest):
            listing.decode(cursor)


def test_a_key_outside_the_tenant_is_a_bad_request_even_in_the_right_partition() -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    forged = {
        "GSI1PK": keys.contacts_by_updated("acme"),
        "GSI1SK": "x",
        "PK": "T#globex#C#1",
        "SK": "PROFILE",
    }
    cursor = base64.urlsafe_b64encode(json.dumps({"l": "contacts", "k": forged}).encode())
    with pytest.raises(BadRequest):
        listing.decode(cursor.decode())


def test_an_over_long_cursor_is_a_bad_request() -> None:
    listing = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
    with pytest.raises(BadRequest):
        listing.decode("A" * 5000)


# Keys DynamoDB would refuse (moto accepts them; DynamoDB answers ValidationException) ---------
def _forged(listing: ListQuery, **changed: str) -> str:
    """A cursor in the server's own format for `listing`, with some key values changed."""
    tenant = listing.tenant_id
    key = {listing.key_names[0]: listing.partition, listing.key_names[1]: "x"}
    if len(listing.key_names) > 2:
        key |= {"PK": keys.contact(tenant, "01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"], "SK": "PROFILE"}
    key |= changed
    payload = json.dumps({"l": listing.name, "k": key}, ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


GSI_LIST = ListQuery("contacts", keys.contacts_by_updated("acme"), "GSI1")
TABLE_LIST = ListQuery("contacts-by-tag", keys.tag_partition("acme", "vip"))
# One, two, three and four UTF-8 bytes a character.
wide_chars = st.sampled_from(["a", "é", "€", "🚀"])


@given(st.lists(wide_chars, max_size=50), st.integers(900, 1100), st.sampled_from(["GSI1SK", "SK"]))
def test_a_sort_key_decodes_only_within_dynamodbs_1024_bytes(
    chars: list[str], padding: int, name: str
) -> None:
    value = "".join(chars) + "a" * padding  # around the bound, in characters of 1 to 4 bytes
    cursor = _forged(GSI_LIST, **{name: value})
    decoded = _decode_or_400(GSI_LIST, cursor)
    if len(value.encode()) <= MAX_SORT_KEY_BYTES:
        assert decoded is not None
        assert decoded[name] == {"S": value}
    else:
        assert decoded is None


@pytest.mark.parametrize("name", ["GSI1SK", "SK"])
def test_a_sort_key_of_1024_bytes_decodes_and_of_1025_is_a_bad_request(name: str) -> None:
    assert MAX_SORT_KEY_BYTES == 1024
    exact = "é" * 512
    decoded = GSI_LIST.decode(_forged(GSI_LIST, **{name: exact}))
    assert decoded is not None
    assert decoded[name] == {"S": exact}
    with pytest.raises(BadRequest):
        GSI_LIST.decode(_forged(GSI_LIST, **{name: exact + "a"}))
    base = _forged(TABLE_LIST, SK="C#" + "x" * 1023)
    with pytest.raises(BadRequest):
        TABLE_LIST.decode(base)


def test_a_table_partition_key_over_2048_bytes_is_a_bad_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a cursor longer than the server ever makes can hold one: the bound holds even
    if the cursor's length limit is raised."""
    monkeypatch.setattr(pagination, "_MAX_CURSOR_CHARS", 16_384)
    assert MAX_PARTITION_KEY_BYTES == 2048
    prefix = "T#acme#C#"
    fits = prefix + "x" * (2048 - len(prefix))
    assert GSI_LIST.decode(_forged(GSI_LIST, PK=fits)) is not None
    with pytest.raises(BadRequest):
        GSI_LIST.decode(_forged(GSI_LIST, PK=fits + "x"))


@given(
    st.sampled_from(["GSI1SK", "SK", "PK"]),
    st.text(max_size=5),
    st.sampled_from(["\\ud800", "\\udfff", "\\udc00\\ud800"]),
    st.text(max_size=5),
)
def test_a_lone_surrogate_in_any_key_is_a_bad_request(
    name: str, before: str, surrogate: str, after: str
) -> None:
    """A JSON escape can spell one; it is not Unicode text, and DynamoDB refuses it."""
    base = "T#acme#C#" if name == "PK" else ""
    spelled = json.dumps(base + before)[1:-1] + surrogate + json.dumps(after)[1:-1]
    key = {"GSI1PK": keys.contacts_by_updated("acme"), "GSI1SK": "x", "PK": "T#acme#C#1"}
    key |= {"SK": "PROFILE"}
    text = json.dumps({"l": "contacts", "k": key}).replace(
        f'"{name}": {json.dumps(key[name])}', f'"{name}": "{spelled}"'
    )
    assert surrogate in text
    cursor = base64.urlsafe_b64encode(text.encode()).decode()
    assert _decode_or_400(GSI_LIST, cursor) is None


@pytest.mark.parametrize("opener", [b"[", b'{"l":'])
def test_a_deeply_nested_cursor_is_a_bad_request(opener: bytes) -> None:
    """Python's json gives up on deep nesting with RecursionError: that must be a 400 too."""
    raw = opener * (1536 // len(opener))
    cursor = base64.urlsafe_b64encode(raw).decode()
    assert len(cursor) <= 2048
    with pytest.raises(BadRequest):
        GSI_LIST.decode(cursor)
