"""Nothing a tenant's user or a contact's data holds puts a control character into a mail
header: header fields refuse them when saved, and a rendered subject drops them (a merge
value is the contact's data, and its NUL or ESC would reach the Subject header)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from crm_core.campaigns import templates
from crm_core.campaigns.campaign_models import FromName, Subject
from crm_core.fields import Email

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
unsafe_chars = st.sampled_from(
    [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + ["\u2028", "\u2029"]
)
from_names = TypeAdapter(FromName)
emails = TypeAdapter(Email)
FOOTER = templates.Footer("1 Main Street, Springfield 12345", "https://u.example/x")


@given(st.text(max_size=40), unsafe_chars, st.text(max_size=40))
def test_a_from_name_with_any_control_character_is_refused(
    before: str, unsafe: str, after: str
) -> None:
    with pytest.raises(ValidationError, match="control character"):
        from_names.validate_python(before + unsafe + after)


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=100))
def test_a_from_name_without_one_is_refused_only_for_its_length(text: str) -> None:
    if UNSAFE.search(text):
        return
    try:
        kept = from_names.validate_python(text)
    except ValidationError:
        assert not text.strip()  # blank: too short once stripped
    else:
        assert kept == text.strip()


def test_the_from_name_schema_says_what_is_refused() -> None:
    schema = from_names.json_schema()
    # fullmatch: in a JSON schema (ECMA-262) `$` is the end of the text, never before a
    # final line break as in Python's `re`. (Beside it, a pattern saying it is not blank.)
    (pattern,) = [re.compile(p["pattern"]) for p in schema["allOf"] if p["pattern"][0] == "^"]
    assert not pattern.fullmatch("Acme\r\nBcc: x")
    assert not pattern.fullmatch("Acme\n")  # not even at the end
    assert pattern.fullmatch("Zoë & Co — News 🚀")


@given(
    st.sampled_from(["ada@example.com", "news@mail.example.com", "zoë@example.de"]),
    st.integers(0, 30),
    unsafe_chars,
)
def test_an_email_never_keeps_a_control_character(address: str, at: int, unsafe: str) -> None:
    """Inside the address it is refused; around it, it is whitespace stripped away."""
    text = address[:at] + unsafe + address[at:]
    try:
        kept = emails.validate_python(text)
    except ValidationError:
        return
    assert not UNSAFE.search(kept)
    assert kept == address


@given(
    st.text(max_size=30),
    st.lists(unsafe_chars, min_size=1, max_size=3),
    st.text(max_size=30),
)
def test_a_rendered_subject_carries_no_control_character(
    before: str, unsafe: list[str], after: str
) -> None:
    contact = {"first_name": before + "".join(unsafe) + after, "attributes": {"plan": "\x00x"}}
    rendered = templates.render(
        "Hi {{ first_name }} {{ attributes.plan }}", "<p>x</p>", "x", contact, FOOTER
    )
    assert not UNSAFE.search(rendered.subject)
    assert rendered.subject == rendered.subject.strip()
    assert "  " not in rendered.subject


def test_a_rendered_subject_keeps_its_words_with_one_space_between() -> None:
    contact = {"first_name": "Ada\x00\x1b[31mLove\r\nlace\u2028\tX"}
    rendered = templates.render("Hi  {{ first_name }}\n!", "<p>x</p>", "x", contact, FOOTER)
    assert rendered.subject == "Hi Ada [31mLove lace X !"


def test_a_stored_display_name_with_a_line_break_still_makes_one_from_header() -> None:
    # A campaign saved before from_name was checked may hold CR/LF: the message is built
    # anyway, with the name on one line (before, building failed, every send of it).
    from email import message_from_bytes

    from crm_core.campaigns import messages

    envelope = messages.Envelope(
        from_address="acme.news@mail.example.com",
        to_address="ada@example.com",
        from_name="Acme\r\nBcc: everyone@example.com",
    )
    rendered = templates.Rendered(subject="Hello", html="<p>Hi</p>", text="Hi")
    raw = messages.build(envelope, rendered, FOOTER.unsubscribe_url, "acme", "c1")
    parsed = message_from_bytes(raw)
    assert parsed["From"] == '"Acme Bcc: everyone@example.com" <acme.news@mail.example.com>'
    assert parsed["Bcc"] is None


@given(st.text(st.one_of(unsafe_chars, st.sampled_from(" \t\xa0\u3000\x85")), min_size=1))
def test_a_subject_of_only_controls_and_spaces_is_refused_as_its_schema_says(text: str) -> None:
    """Its rendering would be blank (controls become spaces): refused by the schema's
    pattern, which clients and the API's fuzzing read, rather than later by rendering."""
    subjects = TypeAdapter(Subject)
    with pytest.raises(ValidationError, match="pattern"):
        subjects.validate_python(text)
    assert not re.search(subjects.json_schema()["pattern"], text)
    assert subjects.validate_python(text + "Hi") == text + "Hi"
    assert templates.render(text + "Hi", "x", "x", {}, FOOTER).subject == "Hi"
