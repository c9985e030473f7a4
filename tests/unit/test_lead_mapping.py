"""Lead field mapping: the source's field map first, else common names; values normalized
as a contact's are; nothing a payload holds makes it fail, and what it drops it says."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.activities.models import ActivityType, validate_fields
from crm_core.fields import MAX_TAGS
from crm_core.leads.mapping import (
    MAX_FORM_FIELDS,
    MAX_FORM_VALUE_CHARS,
    MAX_NAME_CHARS,
    MappedLead,
    form_fields,
    map_lead,
)
from crm_core.leads.payload import FORM, parse
from crm_core.records.contact import ContactCreate


def mapped(payload: dict[str, Any], field_map: dict[str, str] | None = None) -> MappedLead:
    return map_lead(payload, field_map or {})


# Where fields are found ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
        {"Email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
        {"email_address": "ada@example.com", "fname": "Ada", "lname": "Lovelace"},
        {"emailAddress": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace"},
        {"e-mail": "ada@example.com", "first_name": "Ada", "surname": "Lovelace"},
        {"EMAIL": "ada@example.com", "First_Name": "Ada", "LAST_NAME": "Lovelace"},
        {"email": "ada@example.com", "name": "Ada Lovelace"},
        {"email": "ada@example.com", "fullName": "Ada Lovelace"},
    ],
    ids=["snake", "camel", "short", "given-family", "hyphen", "any-case", "name", "fullName"],
)
def test_common_names_are_found(payload: dict[str, Any]) -> None:
    lead = mapped(payload)
    assert (lead.email, lead.first_name, lead.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert lead.usable


def test_every_field_has_its_common_names() -> None:
    lead = mapped(
        {
            "email": "ada@example.com",
            "phone_number": "+44 20 7946 0958",
            "companyName": "Analytical Engines",
            "job_title": "Countess",
            "country_code": "gb",
            "tags": ["vip"],
            "utm_source": "newsletter",
            "utmMedium": "email",
            "utm": {"campaign": "spring", "term": "engines", "content": "button"},
            "pageUrl": "https://example.com/demo",
            "referer": "https://search.example/",
        }
    )
    assert lead.phone == "+442079460958"
    assert (lead.company, lead.title, lead.country) == ("Analytical Engines", "Countess", "GB")
    assert lead.tags == ("vip",)
    assert lead.utm == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_term": "engines",
        "utm_content": "button",
    }
    assert (lead.page_url, lead.referrer) == ("https://example.com/demo", "https://search.example/")
    assert lead.warnings == ()


def test_a_mapped_path_wins_and_is_the_only_place_looked() -> None:
    payload = {
        "contact": {"mail": "ada@example.com", "phones": ["+1 415 555 2671", "+1 415 555 0000"]},
        "answers": [{"value": "Ada"}, {"value": "pro"}],
        "email": "someone.else@example.com",
        "first_name": "Not Ada",
    }
    field_map = {
        "email": "contact.mail",
        "phone": "contact.phones.0",
        "first_name": "answers.0.value",
        "last_name": "missing.path",
        "attributes.plan": "answers.1.value",
    }
    lead = mapped(payload, field_map)
    assert (lead.email, lead.phone, lead.first_name) == ("ada@example.com", "+14155552671", "Ada")
    assert lead.last_name is None  # mapped, absent: no fallback to common names
    assert lead.attributes == {"plan": "pro"}


def test_dotted_form_field_names_are_found_whole() -> None:
    payload = parse(FORM, "contact.email=ada%40example.com&utm.source=fair&contact.name=Ada+L")
    lead = mapped(payload, {"email": "contact.email", "full_name": "contact.name"})
    assert (lead.email, lead.first_name, lead.last_name) == ("ada@example.com", "Ada", "L")
    assert lead.utm == {"utm_source": "fair"}


@pytest.mark.parametrize(
    ("payload", "first", "last"),
    [
        ({"name": "Ada"}, "Ada", None),
        ({"name": "  Ada   King  Lovelace "}, "Ada", "King Lovelace"),
        ({"name": "Ada Lovelace", "first_name": "Augusta"}, "Augusta", "Lovelace"),
        ({"name": "Ada Lovelace", "last_name": "Byron"}, "Ada", "Byron"),
        ({"name": "Ada Lovelace", "first_name": "A", "last_name": "B"}, "A", "B"),
        ({"name": "José Ñúñez"}, "José", "Ñúñez"),
        ({"name": "李小龍"}, "李小龍", None),
        ({"name": "Zoë\tO'Brien-Łukasz"}, "Zoë", "O'Brien-Łukasz"),
    ],
)
def test_a_full_name_fills_the_missing_first_and_last_names(
    payload: dict[str, Any], first: str, last: str | None
) -> None:
    lead = mapped({"email": "x@example.com", **payload})
    assert (lead.first_name, lead.last_name) == (first, last)


def test_names_are_nfc_and_bounded_as_a_contacts() -> None:
    decomposed = "Jose\u0301"  # "José" as e + combining accent
    lead = mapped({"email": "x@example.com", "first_name": decomposed, "last_name": "L" * 300})
    assert lead.first_name == "Jos\u00e9"
    assert lead.last_name == "L" * MAX_NAME_CHARS


# Normalization --------------------------------------------------------------------------------
def test_values_are_normalized_as_a_contacts() -> None:
    lead = mapped(
        {
            "email": "  Ada@Example.COM ",
            "phone": "020 7946 0958",
            "country": " gb ",
            "tags": "Spring 2026, VIP ,vip,,",
            "title": "x" * 200,
        }
    )
    assert (lead.email, lead.phone, lead.country) == ("ada@example.com", "+442079460958", "GB")
    assert lead.tags == ("spring 2026", "vip")
    assert lead.title == "x" * 150
    # What it found, ContactCreate accepts as it is.
    data = ContactCreate(
        email=lead.email,
        phone=lead.phone,
        country=lead.country,
        tags=list(lead.tags),
        title=lead.title,
    )
    assert (data.email, data.phone, data.tags) == (lead.email, lead.phone, list(lead.tags))


def test_a_national_number_without_a_country_is_kept_as_typed() -> None:
    assert mapped({"phone": "030 1234567"}).phone == "030 1234567"
    assert mapped({"phone": "(030) 1234567 ext. 12"}).phone == "(030) 1234567 ext. 12"


def test_numbers_are_text_where_text_is_expected() -> None:
    lead = mapped({"phone": 14155552671, "first_name": 42})
    assert (lead.phone, lead.first_name) == ("14155552671", "42")


def test_tags_beyond_the_limit_are_dropped_and_said() -> None:
    lead = mapped({"email": "x@example.com", "tags": [f"t{n}" for n in range(MAX_TAGS + 5)]})
    assert lead.tags == tuple(f"t{n}" for n in range(MAX_TAGS))
    assert lead.warnings == (f"5 tag(s) skipped: at most {MAX_TAGS}",)


def test_attributes_keep_their_types_within_a_contacts_limits() -> None:
    payload = {"a": "x" * 2000, "b": True, "c": 7, "d": 1.5, "e": 2**60, "f": ["x"], "g": " "}
    field_map = {f"attributes.{k}": k for k in payload}
    lead = mapped({"email": "x@example.com", **payload}, field_map)
    assert lead.attributes == {"a": "x" * 1000, "b": True, "c": 7, "d": 1.5}
    assert lead.warnings == (
        "attributes.e: 'e' holds a int; ignored",
        "attributes.f: 'f' holds a list; ignored",
    )


# Junk never crashes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "kind"),
    [(["ada@example.com"], "a list"), ({"a": 1}, "an object"), (True, "a boolean")],
)
def test_a_value_of_the_wrong_type_is_ignored_for_the_next_common_name(
    value: Any, kind: str
) -> None:
    lead = mapped({"email": value, "emailAddress": "ada@example.com", "name": value})
    assert lead.email == "ada@example.com"  # found under another name: nothing to say
    assert lead.first_name is None
    assert lead.warnings == (f"full_name: 'name' holds {kind}, not text; ignored",)


@pytest.mark.parametrize(
    ("payload", "field_map", "reason"),
    [
        ({}, {}, "no usable email or phone: the payload has no email or phone field"),
        (
            {"email": "ada"},
            {},
            "no usable email or phone: email 'ada' is not a valid address",
        ),
        (
            {"email": "ada", "phone": "call me"},
            {},
            "no usable email or phone: email 'ada' is not a valid address; "
            "phone 'call me' is not a phone number",
        ),
        (
            {"email": "ada@example.com"},
            {"email": "contact.email"},
            "no usable email or phone: email: nothing at 'contact.email'",
        ),
        (
            {"phone": ["1", "2"]},
            {},
            "no usable email or phone: phone: 'phone' holds a list, not text",
        ),
        (
            {"email": "x" * 300 + "@example.com"},
            {},
            f"no usable email or phone: email {'x' * 60 + '...'!r} is not a valid address",
        ),
    ],
    ids=["empty", "invalid-email", "both-invalid", "mapped-missing", "list", "long"],
)
def test_a_lead_without_a_usable_email_or_phone_is_rejected_with_a_clear_reason(
    payload: dict[str, Any], field_map: dict[str, str], reason: str
) -> None:
    lead = mapped(payload, field_map)
    assert not lead.usable
    assert lead.rejection == reason


def test_a_usable_lead_keeps_what_it_dropped_as_a_note() -> None:
    lead = mapped({"email": "ada", "phone": "+1 415 555 2671", "country": "Germany"})
    assert lead.usable
    assert lead.note == (
        "country 'Germany' is not an ISO 3166 two-letter code; dropped; "
        "email 'ada' is not a valid address; dropped"
    )
    assert lead.phone == "+14155552671"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "example.com/page", "https://exa mple.com", "ftp://x.example"]
)
def test_a_page_url_must_be_http(url: str) -> None:
    lead = mapped({"email": "x@example.com", "page_url": url})
    assert lead.page_url is None
    assert len(lead.warnings) == 1


# The activity's fields --------------------------------------------------------------------------
def test_form_fields_are_the_payloads_scalars_by_path_without_secrets() -> None:
    payload = {
        "email": "ada@example.com",
        "consent": True,
        "age": 36,
        "empty": None,
        "contact": {"name": "Ada", "phones": ["1", "2"]},
        "password": "hunter2",
        "user_password": "x",
        "apiKey": "k",
        "_csrf": "t",
        "g-recaptcha-response": "r",
        "credentials": {"user": "u"},
        "cvv": "123",
        "message": "m" * 5000,
    }
    assert form_fields(payload) == {
        "email": "ada@example.com",
        "consent": "true",
        "age": "36",
        "contact.name": "Ada",
        "contact.phones.0": "1",
        "contact.phones.1": "2",
        "message": "m" * MAX_FORM_VALUE_CHARS,
    }


def test_form_fields_are_bounded_as_the_activity_requires() -> None:
    payload = {f"field_{n}": str(n) for n in range(150)} | {"k" * 150: "long key"}
    fields = form_fields(payload)
    assert len(fields) == MAX_FORM_FIELDS
    assert "k" * 150 not in fields


# Properties ---------------------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_names = st.sampled_from(
    ["email", "Email", "name", "phone", "tags", "utm", "country", "page_url", "title", "x.y"]
)
_field_maps = st.dictionaries(
    st.sampled_from(["email", "phone", "first_name", "tags", "attributes.a", "page_url"]),
    st.sampled_from(["email", "x.y", "utm.0", "a.b.c", "tags"]),
    max_size=4,
)


@given(payload=st.dictionaries(_names | st.text(max_size=12), _json, max_size=8), fm=_field_maps)
def test_any_payload_maps_to_values_a_contact_and_an_activity_accept(
    payload: dict[str, Any], fm: dict[str, str]
) -> None:
    lead = map_lead(payload, fm)
    assert lead.usable == (lead.email is not None or lead.phone is not None)
    assert lead.usable == (lead.rejection is None)
    if lead.usable:
        ContactCreate.model_validate(
            {
                k: v
                for k, v in {
                    "email": lead.email,
                    "first_name": lead.first_name,
                    "last_name": lead.last_name,
                    "phone": lead.phone,
                    "title": lead.title,
                    "country": lead.country,
                    "tags": list(lead.tags),
                    "attributes": dict(lead.attributes),
                }.items()
                if v is not None
            }
        )
    validate_fields(
        ActivityType.FORM_SUBMISSION,
        {
            "lead_id": "01JBCNTACT0000000000000000",
            "source_id": "01JBCNTACT0000000000000000",
            "fields": dict(lead.form_fields),
            **({"page_url": lead.page_url} if lead.page_url else {}),
        },
    )


# Consent: only an explicit yes is the person's opt-in -----------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "email_consent",
        "consent",
        "marketing_consent",
        "opt_in",
        "newsletter",
        "optIn",
        "marketingConsent",
        "Newsletter",
    ],
)
@pytest.mark.parametrize("value", [True, 1, "true", "TRUE", " yes ", "on", "1", "subscribed"])
def test_a_yes_under_a_common_name_is_consent(name: str, value: Any) -> None:
    lead = mapped({"email": "ada@example.com", name: value})
    assert lead.consent is True
    assert lead.warnings == ()


@pytest.mark.parametrize(
    "value", [False, 0, "false", "no", "off", "0", "", "  ", None, "unsubscribed"]
)
def test_a_no_or_a_blank_is_no_consent_and_no_unsubscribe(value: Any) -> None:
    lead = mapped({"email": "ada@example.com", "newsletter": value})
    assert lead.consent is False
    assert lead.warnings == ()


def test_no_consent_field_is_no_consent() -> None:
    assert mapped({"email": "ada@example.com"}).consent is False


@pytest.mark.parametrize("value", ["maybe", 2, ["yes", {"a": 1}], {"value": "yes"}])
def test_a_value_that_says_neither_is_no_consent_with_a_warning(value: Any) -> None:
    lead = mapped({"email": "ada@example.com", "consent": value})
    assert lead.consent is False
    (warning,) = lead.warnings
    assert warning.startswith("email_consent: ")


def test_a_repeated_form_field_counts_its_last_value() -> None:
    """A checkbox after a hidden field of the same name: the box's value when ticked."""
    ticked = parse(FORM, "email=ada%40example.com&newsletter=0&newsletter=1")
    unticked = parse(FORM, "email=ada%40example.com&newsletter=0")
    assert mapped(ticked).consent is True
    assert mapped(unticked).consent is False


def test_a_mapped_consent_field_is_looked_up_at_its_path_only() -> None:
    payload = {"email": "ada@example.com", "answers": {"gdpr": "on"}, "newsletter": "no"}
    assert mapped(payload, {"email_consent": "answers.gdpr"}).consent is True
    elsewhere = {"email": "ada@example.com", "newsletter": "yes"}
    assert mapped(elsewhere, {"email_consent": "answers.gdpr"}).consent is False


def test_a_source_may_map_the_consent_field() -> None:
    from crm_core.leads.models import LeadSourceCreate

    source = LeadSourceCreate(name="Form", field_map={"email_consent": "answers.gdpr"})
    assert source.field_map == {"email_consent": "answers.gdpr"}
