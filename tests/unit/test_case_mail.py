"""A case's outbound mail (crm_core/cases/case_mail.py): threaded with the conversation,
one "Re:", our own Message-ID, and no way for a value to start a header of its own."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.cases.case_mail import (
    MAX_REFERENCES,
    build_case_email,
    message_id,
    reply_subject,
    thread_headers,
)

ENTRY = "01HX7Q8Z3V4W5Y6A7B8C9DEFGH"
CASE = "01HX7Q8Z000000000000000000"
OWN_ID = f"<{ENTRY.lower()}.{CASE.lower()}@mail.acme.example>"
EXPECTED_HEADERS = sorted(
    [
        *("from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to"),
        *("references", "x-crm-tenant", "x-crm-case", "mime-version", "content-type"),
    ]
)


def _build(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "from_address": "support@acme.example",
        "from_name": "Acme Support",
        "to_address": "ann@example.com",
        "reply_to": "support+token@acme.example",
        "subject": "Printer on fire",
        "text": "Have you tried turning it off?",
        "html": "<p>Have you tried turning it <b>off</b>?</p>",
        "message_id": OWN_ID,
        "in_reply_to": "<ann.2@mail.example.com>",
        "references": ["<ann.1@mail.example.com>", "<ann.2@mail.example.com>"],
        "tenant_id": "acme",
        "case_id": CASE,
    }
    arguments.update(overrides)
    return build_case_email(**arguments)


def _header_names(message: EmailMessage, *, without: str = "", more: str = "") -> None:
    """Asserts the message has each expected header once, `more` too, `without` not."""
    expected = sorted({*EXPECTED_HEADERS, more} - {without, ""})
    assert sorted(name.lower() for name in message) == expected


def _parsed(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


# --- message ids and threading -----------------------------------------------------------


def test_a_message_id_names_the_entry_and_the_case() -> None:
    assert message_id(ENTRY, CASE, "Mail.Acme.example") == OWN_ID


@pytest.mark.parametrize(
    ("entry_id", "case_id", "domain"),
    [
        ("a b", CASE, "acme.example"),
        (ENTRY, CASE, "acme.example>\r\nBcc: x@y"),
        (ENTRY, CASE, ""),
        ("", CASE, "acme.example"),
        (ENTRY, "<x>", "acme.example"),
    ],
)
def test_a_message_id_of_unusable_parts_is_refused(
    entry_id: str, case_id: str, domain: str
) -> None:
    with pytest.raises(ValueError, match="message id"):
        message_id(entry_id, case_id, domain)


def test_thread_headers_of_a_new_conversation() -> None:
    assert thread_headers([]) == (None, [])


def test_thread_headers_answer_the_latest_message() -> None:
    ids = ["<a@x.example>", "<b@x.example>", "<c@x.example>"]
    assert thread_headers(ids) == ("<c@x.example>", ids)


def test_a_long_thread_keeps_the_first_and_the_most_recent_references() -> None:
    ids = [f"<m{i}@x.example>" for i in range(50)]
    in_reply_to, references = thread_headers(ids)
    assert in_reply_to == "<m49@x.example>"
    assert len(references) == MAX_REFERENCES
    assert references == [ids[0], *ids[-(MAX_REFERENCES - 1) :]]


def test_thread_headers_leave_out_ids_no_header_could_carry() -> None:
    ids = ["<a@x.example>", "no-brackets@x.example", "<b@x.example>", "<é@x.example>", " "]
    assert thread_headers(ids) == ("<b@x.example>", ["<a@x.example>", "<b@x.example>"])


def test_thread_headers_do_not_repeat_an_id() -> None:
    ids = ["<a@x.example>", "<b@x.example>", "<a@x.example>", "<c@x.example>"]
    assert thread_headers(ids) == ("<c@x.example>", ["<a@x.example>", "<b@x.example>", ids[3]])


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer on fire", "Re: Printer on fire"),
        ("Re: Printer on fire", "Re: Printer on fire"),
        ("RE: re: Re:Printer on fire", "Re: Printer on fire"),
        ("Re[2]: Printer", "Re: Printer"),
        ("RE : Imprimante", "Re: Imprimante"),
        ("AW: Drucker", "Re: Drucker"),
        ("Sv: Re: Skrivare", "Re: Skrivare"),
        ("Regarding the printer", "Re: Regarding the printer"),  # "Re" without a colon
        ("Fwd: Printer", "Re: Fwd: Printer"),
        ("", "Re:"),
        ("Re:", "Re:"),
        ("Line\r\nbreak", "Re: Line break"),
    ],
)
def test_reply_subject_has_one_re(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


# --- the message -------------------------------------------------------------------------


def test_the_message_parses_back_with_every_header() -> None:
    message = _parsed(_build())
    _header_names(message)
    assert message["From"].addresses[0].display_name == "Acme Support"
    assert message["From"].addresses[0].addr_spec == "support@acme.example"
    assert message["To"] == "ann@example.com"
    assert message["Reply-To"] == "support+token@acme.example"
    assert message["Subject"] == "Re: Printer on fire"
    # 80 characters: folded onto its own line, which leaves the line's leading space.
    assert message["Message-ID"].strip() == OWN_ID
    assert message["In-Reply-To"] == "<ann.2@mail.example.com>"
    assert message["References"].split() == ["<ann.1@mail.example.com>", "<ann.2@mail.example.com>"]
    assert message["X-CRM-Tenant"] == "acme"
    assert message["X-CRM-Case"] == CASE
    assert parsedate_to_datetime(message["Date"]).utcoffset() is not None


def test_an_agent_reply_is_not_auto_submitted() -> None:
    assert "Auto-Submitted" not in _parsed(_build())


def test_an_automatic_message_can_say_so() -> None:
    raw = _build(extra_headers={"Auto-Submitted": "auto-replied"})
    assert _parsed(raw)["Auto-Submitted"] == "auto-replied"


def test_the_text_and_html_are_alternatives() -> None:
    message = _parsed(_build())
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Have you tried turning it off?"
    assert html.get_content().strip() == "<p>Have you tried turning it <b>off</b>?</p>"


def test_without_html_the_message_is_plain_text() -> None:
    message = _parsed(_build(html=None, text="Ça marche ?"))
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Ça marche ?"


def test_a_reply_subject_gets_no_second_re() -> None:
    assert _parsed(_build(subject="Re: Printer on fire"))["Subject"] == "Re: Printer on fire"
    assert _parsed(_build(subject="RE: RE: Printer"))["Subject"] == "Re: Printer"


def test_a_first_message_keeps_its_subject_and_has_no_threading() -> None:
    message = _parsed(_build(subject="Your case 42", in_reply_to=None, references=[]))
    assert message["Subject"] == "Your case 42"
    assert "In-Reply-To" not in message
    assert "References" not in message


def test_malformed_parent_ids_are_left_out() -> None:
    references = ["<ok@x.example>", "bare@x.example", "<é@x.example>", "<a b@x.example>"]
    message = _parsed(_build(in_reply_to="not an id", references=references))
    assert "In-Reply-To" not in message
    assert message["References"] == "<ok@x.example>"


def test_a_long_references_header_is_folded_under_998_characters() -> None:
    references = [f"<{'x' * 60}.{index}@mail.example.com>" for index in range(MAX_REFERENCES)]
    raw = _build(references=references)
    assert max(len(line) for line in raw.splitlines()) <= 998
    assert _parsed(raw)["References"].split() == references


def test_a_non_ascii_name_and_an_idn_domain_are_encoded() -> None:
    raw = _build(from_name="Équipe Support", to_address="ann@müller.example")
    assert raw.isascii()
    message = _parsed(raw)
    assert message["From"].addresses[0].display_name == "Équipe Support"
    assert message["To"] == "ann@xn--mller-kva.example"


# --- header injection --------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Printer\r\nBcc: victim@example.org",
        "Printer\nBcc: victim@example.org",
        "Printer\rBcc: victim@example.org",
        "Printer\u2028Bcc: victim@example.org",
        "Printer\x00\x1b\x85Bcc: victim@example.org",
    ],
)
def test_a_line_break_in_the_subject_cannot_inject_a_header(subject: str) -> None:
    message = _parsed(_build(subject=subject, in_reply_to=None))
    assert "Bcc" not in message
    assert message["Subject"].startswith("Printer ")
    assert message["Subject"].endswith("Bcc: victim@example.org")
    _header_names(message, without="in-reply-to")


@given(
    st.text(max_size=80),
    st.text(max_size=40),
    st.text(max_size=20),
    st.text(max_size=40),
)
def test_no_value_adds_a_header(subject: str, from_name: str, tenant_id: str, extra: str) -> None:
    raw = _build(
        subject=subject,
        from_name=from_name,
        tenant_id=tenant_id,
        extra_headers={"X-Extra": extra},
    )
    message = _parsed(raw)
    _header_names(message, more="x-extra")
    assert message["Reply-To"] == "support+token@acme.example"


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.com\r\nBcc: victim@example.org",
        "ann@example.com\nBcc: victim@example.org",
        "Ann <ann@example.com>",
        "ann@example.com, victim@example.org",
        "ann example.com",
        "ann@",
        "@example.com",
        "änn@example.com",
        "",
    ],
)
def test_an_address_that_is_not_one_is_refused(address: str) -> None:
    for field in ("to_address", "from_address", "reply_to"):
        with pytest.raises(ValueError, match="not an email address"):
            _build(**{field: address})


def test_a_from_name_with_a_line_break_stays_in_its_header() -> None:
    message = _parsed(_build(from_name="Acme\r\nBcc: victim@example.org"))
    assert "Bcc" not in message
    assert message["From"].addresses[0].display_name == "Acme Bcc: victim@example.org"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("Bcc", "set by build_case_email"),
        ("message-id", "set by build_case_email"),
        ("Content-Type", "set by build_case_email"),
        ("X-CRM-Tenant", "set by build_case_email"),
        ("X Bad", "not a header name"),
        ("X-Bad:", "not a header name"),
        ("X-Bad\r\nBcc", "not a header name"),
        ("", "not a header name"),
    ],
)
def test_extra_headers_cannot_replace_ours_or_be_misnamed(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _build(extra_headers={name: "x"})


def test_an_extra_header_value_is_one_line() -> None:
    message = _parsed(_build(extra_headers={"X-Ticket": "42\r\nBcc: victim@example.org"}))
    assert message["X-Ticket"] == "42 Bcc: victim@example.org"
    assert "Bcc" not in message


@pytest.mark.parametrize(
    "bad_id",
    ["no-brackets@acme.example", "<a b@acme.example>", "<x@acme.example>\r\nBcc: y", "<x>"],
)
def test_a_malformed_own_message_id_is_refused(bad_id: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        _build(message_id=bad_id)
