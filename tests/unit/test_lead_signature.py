"""The webhook signature and payload parsing, without I/O."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.leads import payload, signature

SECRET = "whsec_test"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"email": "ada@example.com"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature.sign(SECRET, 1700000000, body) == expected
    assert signature.header(SECRET, 1700000000, body) == f"t=1700000000,v1={expected}"


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=10**11))
def test_a_header_made_for_a_body_verifies_it_and_nothing_else(body: bytes, t: int) -> None:
    signed = signature.parse(signature.header(SECRET, t, body))
    assert signed.timestamp == t
    assert signature.matches(signed, [SECRET], body)
    assert not signature.matches(signed, ["whsec_other"], body)
    assert not signature.matches(signed, [SECRET], body + b" ")


def test_spaces_upper_case_hex_and_unknown_schemes_are_tolerated() -> None:
    sig = signature.sign(SECRET, 5, b"x")
    signed = signature.parse(f" t=5 , v0=abc, v1={sig.upper()} ")
    assert signature.matches(signed, [SECRET], b"x")


def test_either_secret_during_a_rotation() -> None:
    signed = signature.parse(signature.header("whsec_old", 5, b"x"))
    assert signature.matches(signed, ["whsec_new", "whsec_old"], b"x")
    assert not signature.matches(signed, ["whsec_new"], b"x")


@pytest.mark.parametrize(
    "header",
    [None, "", "t=5", "v1=" + "a" * 64, "t=5,v1=zz", "t=-5,v1=" + "a" * 64, "t=5;v1=x", "t"],
)
def test_malformed_headers(header: str | None) -> None:
    with pytest.raises(signature.SignatureError) as refused:
        signature.parse(header)
    assert refused.value.public == signature.MALFORMED


@pytest.mark.parametrize(("skew", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_tolerance_both_ways(skew: int, ok: bool) -> None:
    signed = signature.SignedHeader(1_000_000 + skew, ("a" * 64,))
    if ok:
        signature.check_time(signed, 1_000_000)
    else:
        with pytest.raises(signature.SignatureError):
            signature.check_time(signed, 1_000_000)


def test_a_delivery_is_its_timestamp_and_body() -> None:
    one = signature.SignedHeader(5, ("a" * 64,))
    other_signature = signature.SignedHeader(5, ("b" * 64,))
    later = signature.SignedHeader(6, ("a" * 64,))
    digest = signature.delivery_digest(one, b"x")
    assert digest == signature.delivery_digest(other_signature, b"x")
    assert digest != signature.delivery_digest(later, b"x")
    assert digest != signature.delivery_digest(one, b"y")


def test_form_fields_repeated_become_lists() -> None:
    parsed = payload.parse(payload.FORM, "email=a%40b.c&i=1&i=2&i=3&empty=")
    assert parsed == {"email": "a@b.c", "i": ["1", "2", "3"], "empty": ""}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("email", "a@b.c"),
        ("contact.name.first", "Ada"),
        ("answers.1.value", "42"),
        ("answers.9.value", None),
        ("contact.missing.deeper", None),
        ("form.email", "dotted@b.c"),
        ("email.domain", None),
    ],
)
def test_lookup_by_dotted_path(path: str, value: object) -> None:
    data = {
        "email": "a@b.c",
        "contact": {"name": {"first": "Ada"}},
        "answers": [{"value": "41"}, {"value": "42"}],
        "form.email": "dotted@b.c",
    }
    assert payload.lookup(data, path) == value


def test_media_types_ignore_parameters_and_case() -> None:
    assert payload.media_type("Application/JSON; charset=UTF-8") == payload.JSON
    assert payload.media_type(None) == ""
