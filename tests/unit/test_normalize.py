"""Normalization of typed values: stable (normalizing twice changes nothing), and any text
either normalizes or is a ValueError, never another exception (which would be a 500)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import domains

from crm_core import normalize
from crm_core.countries import ISO_3166_ALPHA2
from tests.unit.strategies import any_text


def _normalized_or_refused(fn: Callable[[str], object], text: str) -> object | None:
    try:
        return fn(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "fn",
    [normalize.email, normalize.phone, normalize.domain, normalize.tag, normalize.country],
    ids=lambda fn: fn.__name__,
)
@given(text=any_text)
def test_any_text_normalizes_or_is_a_value_error(fn: Callable[[str], str], text: str) -> None:
    result = _normalized_or_refused(fn, text)
    if result is not None:
        assert isinstance(result, str)
        assert fn(result) == result  # stable


# Email -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada.lovelace+crm@example.co.uk\t", "ada.lovelace+crm@example.co.uk"),
        ("ADA@EXAMPLE.COM", "ada@example.com"),
    ],
)
def test_email_examples(typed: str, stored: str) -> None:
    assert normalize.email(typed) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@localhost",
        "ada@@example.com",
        "a b@example.com",
        "a" * 250 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_email_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is for people
        normalize.email(bad)


@given(st.emails())
def test_email_is_lower_case_and_stable(address: str) -> None:
    result = _normalized_or_refused(normalize.email, address)
    if result is not None:
        assert isinstance(result, str)
        assert result == result.lower()
        assert len(result) <= normalize.MAX_EMAIL_CHARS
        assert normalize.email(result) == result


# Phone -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "country", "stored"),
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("030 123456", "DE", "+4930123456"),
        ("020 7946 0958", None, "020 7946 0958"),  # no hint: kept as typed
        ("+49000000", None, "+49000000"),  # would lose a digit on every parse: kept as typed
        ("  ext.  42  ", None, "ext. 42"),
    ],
)
def test_phone_examples(typed: str, country: str | None, stored: str) -> None:
    assert normalize.phone(typed, country) == stored


@given(
    st.from_regex(r"\+?[0-9 ()-]{1,30}", fullmatch=True),
    st.sampled_from([None, "US", "GB", "DE", "FR", "IN"]),
)
def test_phone_is_stable(typed: str, country: str | None) -> None:
    result = _normalized_or_refused(lambda t: normalize.phone(t, country), typed)
    if result is not None:
        assert normalize.phone(str(result), country) == result
        assert "  " not in str(result)


def test_blank_phone_refused() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        normalize.phone("   ")


# Domain ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://www.Acme.COM/x", "acme.com"),
        ("acme.com", "acme.com"),
        ("http://user:pw@shop.acme.co.uk:8080/path?q=1#f", "shop.acme.co.uk"),
        ("WWW.EXAMPLE.ORG.", "example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domain_examples(typed: str, stored: str) -> None:
    assert normalize.domain(typed) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "localhost",
        "not a domain",
        "-acme.com",
        "acme-.com",
        "1.2.3.4",
        "a..b",
        "http://",
        "a" * 64 + ".com",
    ],
)
def test_domain_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        normalize.domain(bad)


@given(domains())
def test_generated_domains_normalize_stably(name: str) -> None:
    result = _normalized_or_refused(normalize.domain, name)
    if result is not None:
        assert result == str(result).lower()
        assert normalize.domain(str(result)) == result


# Tags and countries ----------------------------------------------------------------------------
def test_tags_are_normalized_deduplicated_in_first_seen_order() -> None:
    assert normalize.tags(["VIP", " vip ", "Big  Deal", "big deal", "b2b"], 20, 50) == [
        "vip",
        "big deal",
        "b2b",
    ]


@given(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.:/+-]{0,20}", fullmatch=True), max_size=30))
def test_tags_stay_within_their_limits(values: list[str]) -> None:
    try:
        result = normalize.tags(values, 20, 50)
    except ValueError:
        return
    assert len(result) <= 20
    assert len(set(result)) == len(result)
    assert all(normalize.tag(t) == t and len(t) <= 50 for t in result)
    assert normalize.tags(result, 20, 50) == result


def test_too_many_tags_after_dedupe() -> None:
    assert len(normalize.tags([f"t{i % 20}" for i in range(40)], 20, 50)) == 20
    with pytest.raises(ValueError):  # noqa: PT011
        normalize.tags([f"t{i}" for i in range(21)], 20, 50)


@given(st.sampled_from(sorted(ISO_3166_ALPHA2)))
def test_country_codes_in_any_case(code: str) -> None:
    assert normalize.country(code.lower()) == code
    assert normalize.country(f" {code} ") == code


@pytest.mark.parametrize("bad", ["XX", "UK", "USA", "", "u", "1"])
def test_country_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        normalize.country(bad)
