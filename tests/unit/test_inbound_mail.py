"""Inbound support mail (crm_core/cases/inbound_mail.py): a raw message as SES stores it
becomes the sender, the thread it answers, one text and its attachments; junk raises
MalformedMessage, sloppy mail is read anyway, and quoted history is cut off."""

from __future__ import annotations

import random
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.cases.inbound_mail import (
    MAX_FILENAME_CHARS,
    MAX_PART_DEPTH,
    MAX_REFERENCES,
    MAX_SUBJECT_CHARS,
    InboundMessage,
    MalformedMessage,
    html_to_text,
    new_text_of_reply,
    parse,
    receipt_refusal,
)

MB = 1024 * 1024


def _message(text: str | None = "Hello, my printer is on fire.", **headers: str) -> EmailMessage:
    """A message from Ann to the support queue; `headers` adds or replaces headers
    (underscores in a name are dashes)."""
    message = EmailMessage()
    message["From"] = "Ann Example <Ann@Example.COM>"
    message["To"] = "Support <Support@Acme.example>"
    message["Subject"] = "Printer on fire"
    message["Date"] = "Tue, 02 Jan 2024 10:00:00 +0100"
    message["Message-ID"] = "<first.1@mail.example.com>"
    for name, value in headers.items():
        header = name.replace("_", "-")
        del message[header]
        if value:
            message[header] = value
    if text is not None:
        message.set_content(text)
    return message


def _parse(message: EmailMessage | bytes, **limits: Any) -> InboundMessage:
    return parse(message if isinstance(message, bytes) else bytes(message), **limits)


# --- headers -----------------------------------------------------------------------------


def test_a_plain_text_message() -> None:
    message = _message(Cc="Bob <BOB@Example.com>, carol@example.org", Reply_To="Ann@Home.example")
    parsed = _parse(message)
    assert parsed.from_address == "ann@example.com"
    assert parsed.from_name == "Ann Example"
    assert parsed.reply_to == "ann@home.example"
    assert parsed.to == ("support@acme.example",)
    assert parsed.cc == ("bob@example.com", "carol@example.org")
    assert parsed.subject == "Printer on fire"
    assert parsed.text == "Hello, my printer is on fire."
    assert not parsed.text_truncated
    assert parsed.message_id == "<first.1@mail.example.com>"
    assert parsed.in_reply_to is None
    assert parsed.references == ()
    assert parsed.attachments == ()
    assert parsed.attachments_dropped == 0
    assert not parsed.auto_submitted
    assert parsed.sent_at == "2024-01-02T09:00:00.000Z"


def test_a_from_name_with_a_comma_and_encoded_words_is_decoded() -> None:
    raw = (
        b"From: =?utf-8?q?M=C3=BCller=2C_Hans?= <Hans@X.example>\r\n"
        b"Subject: =?utf-8?b?w4dhIG5lIG1hcmNoZSBwYXM=?=\r\n\r\nbody\r\n"
    )
    parsed = parse(raw)
    assert parsed.from_name == "Müller, Hans"
    assert parsed.from_address == "hans@x.example"
    assert parsed.subject == "Ça ne marche pas"


def test_a_missing_name_subject_date_and_message_id_are_fine() -> None:
    parsed = parse(b"From: ann@example.com\r\n\r\nHello\r\n")
    assert parsed.from_name is None
    assert parsed.subject == ""
    assert parsed.sent_at is None
    assert parsed.message_id is None
    assert parsed.to == ()
    assert parsed.text == "Hello"


def test_a_folded_subject_is_one_line_and_a_long_one_is_cut() -> None:
    folded = parse(b"From: a@example.com\r\nSubject: one\r\n two\r\n\tthree\r\n\r\nx")
    assert folded.subject == "one two three"
    long = _parse(_message(Subject="x" * 2000))
    assert long.subject == "x" * MAX_SUBJECT_CHARS


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 02 Jan 2024 10:00:00 +0100", "2024-01-02T09:00:00.000Z"),
        ("Mon, 1 Jan 2024 23:30:00 -0500", "2024-01-02T04:30:00.000Z"),
        ("Tue, 02 Jan 2024 10:00:00 -0000", "2024-01-02T10:00:00.000Z"),  # zone unknown
        ("not a date at all", None),
        ("Tue, 99 Foo 2024 99:99:99 +0100", None),
    ],
)
def test_the_date_is_iso_utc_or_none(date: str, expected: str | None) -> None:
    raw = f"From: a@example.com\r\nDate: {date}\r\n\r\nx".encode()
    assert parse(raw).sent_at == expected


def test_threading_headers_are_normalized() -> None:
    raw = (
        b"From: a@example.com\r\n"
        b"Message-ID:   bare.id@mail.example.com  \r\n"
        b"In-Reply-To: your message of Tue, 2 Jan <second@acme.example> (Ann)\r\n"
        b"References: <first@acme.example>\r\n"
        b"  <second@acme.example>\r\n\t<first@acme.example> junk <third@acme.example>\r\n"
        b"\r\nbody"
    )
    parsed = parse(raw)
    assert parsed.message_id == "<bare.id@mail.example.com>"
    assert parsed.in_reply_to == "<second@acme.example>"
    assert parsed.references == (
        "<first@acme.example>",
        "<second@acme.example>",
        "<third@acme.example>",
    )


def test_a_message_id_that_is_not_one_is_none() -> None:
    parsed = parse(b"From: a@example.com\r\nMessage-ID: no id here\r\nIn-Reply-To: \r\n\r\nx")
    assert parsed.message_id is None
    assert parsed.in_reply_to is None


def test_very_long_references_keep_the_first_and_the_most_recent() -> None:
    ids = [f"<m{i}@example.com>" for i in range(MAX_REFERENCES + 50)]
    parsed = _parse(_message(References=" ".join(ids)))
    assert len(parsed.references) == MAX_REFERENCES
    assert parsed.references[0] == ids[0]
    assert parsed.references[1:] == tuple(ids[-(MAX_REFERENCES - 1) :])


# --- refused input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "no headers"),
        (random.Random(7).randbytes(4000), "no headers"),
        (b"\x00\xff\xfe\x89PNG garbage\r\n\r\n", "no headers"),
        (b"just some text without any header\nsecond line\n", "no headers"),
        (b"Subject: hello\r\nTo: support@acme.example\r\n\r\nbody", "no From"),
        (b"From: undisclosed recipients\r\n\r\nbody", "no From"),
        (b"From: <>\r\n\r\nbody", "no From"),
        (
            b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody\r\n",
            "no boundary",
        ),
    ],
)
def test_input_that_is_not_a_usable_message_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse(raw)


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_malformed_message(raw: bytes) -> None:
    try:
        parsed = parse(raw)
    except MalformedMessage:
        return
    assert "@" in parsed.from_address


@given(st.binary(max_size=2000))
def test_any_body_under_text_headers_parses(body: bytes) -> None:
    raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    assert parse(raw).from_address == "a@example.com"


@given(st.binary(max_size=2000))
def test_any_body_under_multipart_headers_parses_or_its_parts_are_missing(body: bytes) -> None:
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + body
    try:
        parsed = parse(raw)
    except MalformedMessage as error:
        refusal = str(error)
    else:
        refusal = ""
        assert parsed.from_address == "a@example.com"
    if refusal:
        assert b"--b" not in body
        assert "parts cannot be found" in refusal


# Values on which the email package's own header parser raises (Python 3.11): IndexError,
# AttributeError, TypeError, UnboundLocalError. The raw value is read instead.
@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("To", "q.<"),
        ("To", ".\x80:B>"),
        ("Cc", "(,=?).[é:?"),
        ("Reply-To", "=\x00@[\t"),
        ("Message-ID", "<?@"),
        ("Message-ID", "<\x80@[(?"),
        ("Content-Type", ">Q<a:Q?-;a-*"),
        ("Content-Type", "text/plain; charset=utf-8; a-*"),
        ("Content-Disposition", ">Q<a:Q?-;a-*"),
    ],
)
def test_a_header_the_email_package_cannot_parse_does_not_stop_the_message(
    header: str, value: str
) -> None:
    raw = f"From: ann@example.com\r\n{header}: {value}\r\n\r\nHello".encode(
        "utf-8", "surrogateescape"
    )
    parsed = parse(raw)
    assert parsed.from_address == "ann@example.com"
    assert parsed.text == "Hello"


def _nested(depth: int) -> bytes:
    """A message whose text is `depth` multiparts deep."""
    head = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
        for level in range(depth)
    )
    text = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b%d--\r\n" % (depth, depth)
    closing = b"".join(b"--b%d--\r\n" % level for level in reversed(range(depth)))
    return head + opening + text + closing


def test_parts_nested_a_few_levels_deep_are_read() -> None:
    assert parse(_nested(MAX_PART_DEPTH - 1)).text == "deep"


@pytest.mark.parametrize("depth", [MAX_PART_DEPTH, 400, 2000])
def test_parts_nested_too_deeply_are_refused(depth: int) -> None:
    with pytest.raises(MalformedMessage, match="nested"):
        parse(_nested(depth))


def test_a_part_with_a_garbled_content_type_does_not_stop_the_others() -> None:
    # "x-*" makes the email package's default policy raise while it splits the parts.
    raw = (
        b"From: =?utf-8?q?M=C3=BCller=2C_Ann?= <ann@example.com>\r\n"
        b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe body\r\n"
        b"--b\r\nContent-Type: application/pdf; name=a.pdf; x-*\r\n"
        b'Content-Disposition: attachment; filename="=?UTF-8?B?w6l0w6kucGRm?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
    )
    parsed = parse(raw)
    assert (parsed.from_name, parsed.subject, parsed.text) == ("Müller, Ann", "Café", "The body")
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("été.pdf", "application/pdf", b"%PDF")
    ]


_HOSTILE = st.text(alphabet='<>@",;:\\()[]=?. aQB_\x00\t\x80é*%/-', max_size=16)
_HEADERS = st.sampled_from(
    [
        *("To", "Cc", "Reply-To", "Message-ID", "In-Reply-To", "References", "Date"),
        *("Subject", "Content-Type", "Content-Disposition", "Content-Transfer-Encoding"),
        "Content-ID",
    ]
)


@given(_HEADERS, _HOSTILE, _HEADERS, _HOSTILE)
def test_hostile_header_values_never_raise_anything_but_malformed_message(
    top_name: str, top_value: str, part_name: str, part_value: str
) -> None:
    raw = (
        f"From: a@example.com\r\n{top_name}: {top_value}\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\n{part_name}: {part_value}\r\n\r\nhi\r\n"
        f"--b\r\nContent-Type: application/pdf\r\n{part_name}: {part_value}\r\n\r\nAAAA\r\n"
        "--b--\r\n"
    ).encode("utf-8", "surrogateescape")
    try:
        parsed = parse(raw)
    except MalformedMessage:
        return
    assert parsed.from_address == "a@example.com"


# --- body --------------------------------------------------------------------------------


def test_multipart_alternative_prefers_the_plain_text() -> None:
    message = _message("Plain words")
    message.add_alternative("<p>HTML <b>words</b></p>", subtype="html")
    parsed = _parse(message)
    assert parsed.text == "Plain words"
    assert parsed.attachments == ()


def test_an_empty_plain_alternative_gives_way_to_the_html() -> None:
    message = _message("   \n")
    message.add_alternative("<p>The real text</p>", subtype="html")
    assert _parse(message).text == "The real text"


def test_an_html_only_message_is_rendered_to_text() -> None:
    html = (
        "<html><head><title>Ticket</title><style>p { color: red }</style></head><body>"
        "<p>Hello&nbsp;team,</p><div>first line<br>second   line</div>"
        "<script>alert('x')</script><ul><li>one</li>\n<li>two</li></ul>"
        "<p>Fish &amp; chips</p></body></html>"
    )
    message = _message(None)
    message.set_content(html, subtype="html")
    assert _parse(message).text == (
        "Hello\xa0team,\n\nfirst line\nsecond line\none\ntwo\n\nFish & chips"
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a<br>b<br/>c<br><br>d", "a\nb\nc\n\nd"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<pre>  x\n    y</pre>", "x\ny"),
        ("<b>bold</b> <i>italic</i>", "bold italic"),
        ("<style>.x{}</style><noscript>no</noscript>seen", "seen"),
        ("<table><tr><td>a</td><td>b</td></tr></table>after", "a\nb\n\nafter"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_a_message_without_a_text_part_has_no_text() -> None:
    message = _message(None)
    message.set_content(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    parsed = _parse(message)
    assert parsed.text == ""
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]
    assert parsed.attachments[0].content == b"%PDF-1.4"


def test_body_pieces_around_an_inline_image_are_all_kept() -> None:
    # Apple Mail sends text, a pasted image, more text as three parts of multipart/mixed.
    message = _message(None)
    message.make_mixed()
    for part_text in ("Before the picture.", None, "After the picture."):
        part = EmailMessage()
        if part_text is None:
            part.set_content(b"\x89PNG", maintype="image", subtype="png", disposition="inline")
        else:
            part.set_content(part_text)
        message.attach(part)
    parsed = _parse(message)
    assert parsed.text == "Before the picture.\n\nAfter the picture."
    assert [(a.content_type, a.inline) for a in parsed.attachments] == [("image/png", True)]


def test_a_long_text_is_truncated() -> None:
    parsed = _parse(_message("x" * 500), max_text_chars=100)
    assert parsed.text == "x" * 100
    assert parsed.text_truncated
    assert not _parse(_message("x" * 100), max_text_chars=100).text_truncated


def test_an_unknown_charset_is_decoded_with_replacement() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
        b"\r\nCaf\xe9 ok\r\n"
    )
    assert parse(raw).text == "Caf\ufffd ok"


@pytest.mark.parametrize("charset", ["utf-8", "base64", "idna", "rot13"])
def test_bytes_a_charset_cannot_decode_are_replaced(charset: str) -> None:
    raw = (
        f"From: a@example.com\r\nContent-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + b"ok \xff\xfe done\r\n"
    )
    assert parse(raw).text == "ok \ufffd\ufffd done"


def test_a_declared_charset_is_honoured() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=windows-1252\r\n"
        b"\r\nCaf\xe9 \x80\r\n"
    )
    assert parse(raw).text == "Café €"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (b"=?x-bogus?q?caf=E9?= today", "caf\ufffd today"),
        (b"=?utf-8?q?caf=E9?= today", "caf\ufffd today"),  # not UTF-8 after all
        (b"caf\xc3\xa9 raw UTF-8", "café raw UTF-8"),  # 8-bit header, no encoded word
        (b"caf\xe9 raw Latin-1", "caf\ufffd raw Latin-1"),
    ],
)
def test_a_badly_encoded_subject_is_read_with_replacement(subject: bytes, expected: str) -> None:
    raw = b"From: a@example.com\r\nSubject: " + subject + b"\r\n\r\nx"
    assert parse(raw).subject == expected


# --- attachments -------------------------------------------------------------------------


def test_a_20_mb_attachment_is_listed_with_its_size_but_not_kept() -> None:
    message = _message("See the log.")
    big = b"\x00\x01" * (10 * MB)
    message.add_attachment(big, maintype="application", subtype="octet-stream", filename="x.log")
    message.add_attachment(b"small", maintype="text", subtype="plain", filename="note.txt")
    parsed = _parse(message)
    assert parsed.text == "See the log."
    log, note = parsed.attachments
    assert (log.filename, log.size, log.content) == ("x.log", 20 * MB, None)
    assert (note.filename, note.size, note.content) == ("note.txt", 5, b"small")


def test_the_size_limit_is_inclusive() -> None:
    message = _message()
    message.add_attachment(b"a" * 100, maintype="application", subtype="zip", filename="a.zip")
    message.add_attachment(b"b" * 101, maintype="application", subtype="zip", filename="b.zip")
    kept, dropped = _parse(message, max_attachment_bytes=100).attachments
    assert kept.content == b"a" * 100
    assert dropped.content is None
    assert dropped.size == 101


def test_attachments_past_the_limit_are_counted_not_kept() -> None:
    message = _message()
    for index in range(25):
        message.add_attachment(
            f"file {index}".encode(), maintype="application", subtype="pdf", filename=f"{index}.pdf"
        )
    parsed = _parse(message, max_attachments=20)
    assert [a.filename for a in parsed.attachments] == [f"{i}.pdf" for i in range(20)]
    assert parsed.attachments_dropped == 5


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\Desktop\\invoice.pdf", "invoice.pdf"),
        ("résumé été 2024.pdf", "résumé été 2024.pdf"),  # RFC 2231 encoded by the package
        ("bad\x00na\x1fme\x7f.txt", "badname.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # no right-to-left override trick
        ("..", "attachment-1"),
        ("/", "attachment-1"),
        ("  spaced.txt  ", "spaced.txt"),
    ],
)
def test_filenames_are_sanitized(filename: str, expected: str) -> None:
    message = _message()
    message.add_attachment(b"x", maintype="application", subtype="pdf", filename=filename)
    assert _parse(message).attachments[0].filename == expected


def test_an_rfc_2231_filename_with_a_charset_is_decoded() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment;\r\n filename*=iso-8859-1''r%E9sum%E9%2F..%2Fx.pdf\r\n"
        b"\r\neA==\r\n--b--\r\n"
    )
    attachment = parse(raw).attachments[0]
    assert attachment.filename == "x.pdf"
    assert attachment.content == b"x"


def test_an_encoded_word_filename_is_decoded() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: application/octet-stream;"
        b' name="=?UTF-8?B?w6l0w6kucGRm?="\r\nContent-Disposition: attachment;'
        b' filename="=?UTF-8?B?w6l0w6kucGRm?="\r\n\r\nxx'
    )
    assert parse(raw).attachments[0].filename == "été.pdf"


def test_a_long_filename_is_cut_keeping_its_extension() -> None:
    message = _message()
    message.add_attachment(b"x", maintype="application", subtype="pdf", filename="n" * 400 + ".pdf")
    filename = _parse(message).attachments[0].filename
    assert len(filename) == MAX_FILENAME_CHARS
    assert filename.endswith("n.pdf")


def test_an_attachment_without_a_name_gets_a_numbered_one() -> None:
    message = _message()
    message.add_attachment(b"1", maintype="application", subtype="pdf", filename="named.pdf")
    message.add_attachment(b"2", maintype="application", subtype="octet-stream")
    names = [a.filename for a in _parse(message).attachments]
    assert names == ["named.pdf", "attachment-2"]


def test_a_text_part_with_a_filename_is_an_attachment_not_the_body() -> None:
    message = _message("The body.")
    message.add_attachment("a,b\n1,2\n", subtype="csv", filename="data.csv")
    message.add_attachment("log line\n", filename="server.log")
    parsed = _parse(message)
    assert parsed.text == "The body."
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("data.csv", "text/csv"),
        ("server.log", "text/plain"),
    ]


def test_an_inline_image_in_related_html_keeps_its_content_id() -> None:
    message = _message("Plain version")
    message.add_alternative('<p>See <img src="cid:shot1@ann"></p>', subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<shot1@ann>")
    parsed = _parse(message)
    assert parsed.text == "Plain version"
    (image,) = parsed.attachments
    assert (image.content_type, image.content_id, image.inline) == ("image/png", "shot1@ann", True)
    assert image.filename == "attachment-1"


def test_a_forwarded_message_is_an_attachment_not_body_text() -> None:
    inner = _message("Inner secret text", Subject="The forwarded one")
    message = _message("Please see below.")
    message.add_attachment(inner)
    parsed = _parse(message)
    assert parsed.text == "Please see below."
    (forwarded,) = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.content is not None
    reparsed = BytesParser(policy=policy.default).parsebytes(forwarded.content)
    assert reparsed["Subject"] == "The forwarded one"


def test_a_non_text_message_is_one_attachment() -> None:
    raw = (
        b"From: scanner@example.com\r\nContent-Type: image/jpeg\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n/9j/4A==\r\n"
    )
    parsed = parse(raw)
    assert parsed.text == ""
    assert [(a.content_type, a.content, a.inline) for a in parsed.attachments] == [
        ("image/jpeg", b"\xff\xd8\xff\xe0", False)
    ]


# --- auto-submitted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated; owner-email=x@example.com",
        "Auto-Submitted: AUTO-NOTIFIED",
        "Precedence: bulk",
        "Precedence: List",
        "Precedence: junk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "X-Autogenerated: Reply",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
    ],
)
def test_machine_sent_mail_is_auto_submitted(header: str) -> None:
    raw = f"From: a@example.com\r\n{header}\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n".encode()
    assert parse(raw).auto_submitted


@pytest.mark.parametrize(
    "header",
    ["Auto-Submitted: no", "Auto-Submitted: No ; comment", "Precedence: first-class", "X-Y: z"],
)
def test_a_person_s_mail_is_not_auto_submitted(header: str) -> None:
    raw = f"From: a@example.com\r\n{header}\r\n\r\nx".encode()
    assert not parse(raw).auto_submitted


# --- quoted history ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        # Gmail
        "Thanks, it works now.\n\nOn Tue, Jan 2, 2024 at 10:00 AM Acme Support <"
        "support@acme.example> wrote:\n> Have you tried turning it off?\n",
        # Gmail, folded over two lines
        "Thanks, it works now.\n\nOn Tue, Jan 2, 2024 at 10:00 AM Acme Support <\n"
        "support@acme.example> wrote:\n\n> Have you tried turning it off?\n",
        # Apple Mail
        "Thanks, it works now.\n\nOn 2 Jan 2024, at 10:00, Acme Support wrote:\n\n> Old\n",
        # Thunderbird, French
        "Thanks, it works now.\n\nLe 02/01/2024 à 10:00, Acme Support a écrit :\n> Vieux\n",
        # German
        "Thanks, it works now.\n\nAm 02.01.2024 um 10:00 schrieb Acme Support:\n> Alt\n",
        # Outlook
        "Thanks, it works now.\n\n-----Original Message-----\nFrom: Acme Support\n"
        "Sent: Tuesday, January 2, 2024 10:00 AM\nSubject: RE: Printer\n\nOld text\n",
        # Outlook, header block under a rule
        "Thanks, it works now.\n\n________________________________\n"
        "From: Acme Support <support@acme.example>\nSent: Tuesday, January 2, 2024 10:00\n"
        "To: Ann\nSubject: Printer\n\nOld text\n",
        # Outlook rendered from HTML, bold labels
        "Thanks, it works now.\n\n*From:* Acme Support\n*Sent:* Tuesday, 2 January 2024\n"
        "Old text\n",
        # only ">" lines at the end
        "Thanks, it works now.\n\n> Have you tried turning it off?\n> \n>> Earlier\n",
        # Windows line ends
        "Thanks, it works now.\r\n\r\nOn Tue, Jan 2, 2024 at 10:00 AM Acme wrote:\r\n> x\r\n",
    ],
)
def test_the_quoted_history_of_a_reply_is_cut_off(reply: str) -> None:
    assert new_text_of_reply(reply) == "Thanks, it works now."


@pytest.mark.parametrize(
    "text",
    [
        "Just a new message.\nWith two lines.\n",
        "It broke again.\nOn Monday my colleague wrote:\nit is broken.",  # no date in it
        "From: the warehouse, the parcel never left.\nIt is still there.",  # no Sent:
        "",
    ],
)
def test_a_message_without_quotes_is_unchanged(text: str) -> None:
    assert new_text_of_reply(text) == text


def test_interleaved_answers_keep_their_quotes_but_not_the_trailing_ones() -> None:
    reply = "> Which model?\nThe X100.\n> Since when?\nYesterday.\n\n> Regards,\n> Acme\n"
    assert new_text_of_reply(reply) == "> Which model?\nThe X100.\n> Since when?\nYesterday."


@pytest.mark.parametrize(
    "text",
    [
        "> only a quote\n> nothing new\n",
        "On Tue, Jan 2, 2024 at 10:00 AM Acme wrote:\n> everything quoted\n",
        "-----Original Message-----\nFrom: x\nSent: y\n\nold\n",
    ],
)
def test_an_entirely_quoted_text_is_returned_whole(text: str) -> None:
    assert new_text_of_reply(text) == text


@given(st.text(max_size=400))
def test_the_new_text_is_a_non_empty_start_of_the_reply(text: str) -> None:
    new_text = new_text_of_reply(text)
    if text.strip():
        assert new_text.strip()
    assert text.replace("\r\n", "\n").startswith(new_text) or new_text == text


# --- SES receipt verdicts ----------------------------------------------------------------


def _receipt(**overrides: Any) -> dict[str, Any]:
    receipt: dict[str, Any] = {
        name: {"status": "PASS"}
        for name in ("spamVerdict", "virusVerdict", "spfVerdict", "dkimVerdict", "dmarcVerdict")
    }
    receipt.update(overrides)
    return receipt


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({}, None),
        ({"virusVerdict": {"status": "FAIL"}}, "virus"),
        ({"spamVerdict": {"status": "FAIL"}}, "spam"),
        ({"virusVerdict": {"status": "FAIL"}, "spamVerdict": {"status": "FAIL"}}, "virus"),
        ({"dmarcVerdict": {"status": "FAIL"}, "dmarcPolicy": "reject"}, "dmarc"),
        ({"dmarcVerdict": {"status": "FAIL"}, "dmarcPolicy": "quarantine"}, "dmarc"),
        ({"dmarcVerdict": {"status": "FAIL"}, "dmarcPolicy": "none"}, None),
        ({"dmarcVerdict": {"status": "FAIL"}}, None),
        ({"dmarcVerdict": {"status": "PASS"}, "dmarcPolicy": "reject"}, None),
        ({"spfVerdict": {"status": "FAIL"}, "dkimVerdict": {"status": "FAIL"}}, None),
        ({"spamVerdict": {"status": "GRAY"}}, None),
        ({"virusVerdict": {"status": "PROCESSING_FAILED"}}, None),
        ({"virusVerdict": None, "spamVerdict": "FAIL"}, None),
    ],
)
def test_receipt_refusal(overrides: dict[str, Any], refusal: str | None) -> None:
    assert receipt_refusal(_receipt(**overrides)) == refusal


def test_missing_verdicts_are_not_a_refusal() -> None:
    assert receipt_refusal({}) is None
    assert receipt_refusal({"virusVerdict": {}}) is None
