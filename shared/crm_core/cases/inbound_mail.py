"""A customer's email to a support queue, as the case conversation needs it.

SES receiving stores each message raw (RFC 5322 bytes) in S3; `parse` turns it into an
`InboundMessage`: who wrote (lowercased addresses), the threading headers that find the
case it answers (`In-Reply-To`, `References`), one plain-text body and the attachments.

Mail in the wild is sloppy, so parsing is lenient wherever the meaning survives: an
unknown charset is decoded as UTF-8 with replacement characters, a missing or garbled
`Date` or `Message-ID` is None, a header the email package cannot parse is read raw. Only
input that is not a message we could act on raises `MalformedMessage`: no headers at all,
no usable From address (there would be nobody to answer), a multipart message whose parts
cannot be found.

Limits keep one message from filling a Lambda's memory or a case: at most
`max_attachments` attachments are kept (the others are only counted), an attachment over
`max_attachment_bytes` is listed with its size but not kept, and the text stops at
`max_text_chars`. A 20 MB attachment is decoded once to measure it, then dropped.

`auto_submitted` says the message was sent by a machine (an out-of-office reply, a
bounce, a mailing list): a help desk must not answer those, or two auto-responders answer
each other forever (RFC 3834).

`new_text_of_reply` cuts the quoted history off a reply, so a conversation shows each
message's new text once; `receipt_refusal` reads the verdicts SES gives every message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.errors import HeaderParseError, MessageError
from email.header import decode_header, make_header
from email.headerregistry import BaseHeader
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from crm_core.clock import format_iso
from crm_core.fields import one_line

MAX_SUBJECT_CHARS = 998  # RFC 5322's longest header line
MAX_FILENAME_CHARS = 255  # what most file systems and S3 object names take
MAX_MESSAGE_ID_CHARS = 998
# `References` grows by one id per message of a thread; a hostile one could hold
# thousands. The first and the most recent ones are those that find a thread.
MAX_REFERENCES = 100
# Real mail nests multiparts a few levels deep (mixed > related > alternative); hundreds
# of levels only serve to exhaust the stack of the parser or of the walk.
MAX_PART_DEPTH = 32

# policy.default parses a header when it is read, and its parser raises more than
# HeaderParseError on some malformed values (IndexError, AttributeError, TypeError and
# UnboundLocalError, a NameError, on Python 3.11): the raw value is then read instead.
_HEADER_ERRORS = (
    HeaderParseError,
    MessageError,
    ValueError,
    IndexError,
    TypeError,
    LookupError,
    AttributeError,
    NameError,
)
_CONTENT_TYPE_RE = re.compile(r"\s*([a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+)", re.IGNORECASE)
_MESSAGE_ID_RE = re.compile(r"<([^<>\s\x00-\x1f\x7f]+)>")
_BARE_MESSAGE_ID_RE = re.compile(r"^[^<>\s\x00-\x1f\x7f]+@[^<>\s\x00-\x1f\x7f]+$")
_BODY_TYPES = ("text/plain", "text/html")
# Headers that only auto-responders set (RFC 3834 predates them; vendors still use them).
_AUTO_REPLY_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-AutoReply-From",
    "X-Mail-Autoreply",
)
_AUTO_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
# Filename characters no file system or browser should see: controls, and format
# characters such as U+202E, which shows "invoice\u202efdp.exe" as "invoiceexe.pdf".
_UNSAFE_CHAR_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_KEPT_EXTENSION_CHARS = 16


class MalformedMessage(ValueError):
    """Input that is not an email we can act on; the message says why."""


@dataclass(frozen=True)
class Attachment:
    filename: str  # sanitized: no path, no control characters, at most 255 characters
    content_type: str
    size: int  # decoded bytes
    content: bytes | None  # None when over the size limit: listed, not kept
    content_id: str | None  # without angle brackets, as a `cid:` URL in the HTML names it
    inline: bool  # shown in the body (a pasted screenshot) rather than attached


@dataclass(frozen=True)
class InboundMessage:
    message_id: str | None  # "<id@host>"
    in_reply_to: str | None
    references: tuple[str, ...]  # oldest first, deduplicated
    from_address: str  # lowercased
    from_name: str | None
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    text_truncated: bool
    attachments: tuple[Attachment, ...]
    attachments_dropped: int  # attachments past the count limit: counted, not read
    auto_submitted: bool
    sent_at: str | None  # the Date header, ISO 8601 UTC
    priority: str = "normal"  # what the sender marked it (`_priority`): a case's priority


def parse(
    raw: bytes,
    *,
    max_attachments: int = 20,
    max_attachment_bytes: int = 10 * 1024 * 1024,
    max_text_chars: int = 100_000,
) -> InboundMessage:
    """The message in `raw` (RFC 5322 bytes); MalformedMessage when it is not one."""
    message = _message_of(raw)
    if not message.keys():
        raise MalformedMessage("not an email message: it has no headers")
    from_addresses = _addresses(message, "From")
    if not from_addresses:
        raise MalformedMessage("the message has no From address")
    if _content_type(message).startswith("multipart/") and not message.is_multipart():
        raise MalformedMessage("a multipart message whose parts cannot be found (no boundary)")
    from_name, from_address = from_addresses[0]
    reply_to = _addresses(message, "Reply-To")
    walker = _PartWalker(max_attachments, max_attachment_bytes)
    text = walker.body_text(message).text.strip("\n")
    return InboundMessage(
        message_id=_first_message_id(_header_text(message, "Message-ID")),
        in_reply_to=_first_message_id(_header_text(message, "In-Reply-To")),
        references=_references(_header_text(message, "References")),
        from_address=from_address,
        from_name=from_name or None,
        reply_to=reply_to[0][1] if reply_to else None,
        to=_unique(address for _, address in _addresses(message, "To")),
        cc=_unique(address for _, address in _addresses(message, "Cc")),
        subject=one_line(_header_text(message, "Subject") or "")[:MAX_SUBJECT_CHARS],
        text=text[:max_text_chars],
        text_truncated=len(text) > max_text_chars,
        attachments=tuple(walker.attachments),
        attachments_dropped=walker.dropped,
        auto_submitted=_auto_submitted(message),
        sent_at=_sent_at(_header_text(message, "Date")),
        priority=_priority(message),
    )


# X-Priority's digit (1 highest .. 5 lowest, as mail clients write it: "1 (Highest)").
_X_PRIORITY = {"1": "urgent", "2": "high", "3": "normal", "4": "low", "5": "low"}
_X_PRIORITY_RE = re.compile(r"^\s*([1-5])\b")


def _priority(message: Message[Any, Any]) -> str:
    """The case priority the sender asked for: `Priority: urgent | non-urgent` (RFC 2156),
    `X-Priority` 1 (urgent), 2 (high), 4 or 5 (low), `Importance: high | low` (RFC 2156, as
    Outlook writes it with X-Priority); else normal. A help desk's triage may change it."""
    stated = (_header_text(message, "Priority") or "").strip().lower()
    if stated == "urgent":
        return "urgent"
    digit = _X_PRIORITY_RE.match(_header_text(message, "X-Priority") or "")
    if digit:
        return _X_PRIORITY[digit.group(1)]
    importance = (_header_text(message, "Importance") or "").strip().lower()
    if importance in ("high", "low"):
        return importance
    return "low" if stated == "non-urgent" else "normal"


def _message_of(raw: bytes) -> Message[Any, Any]:
    try:
        return BytesParser(policy=default_policy).parsebytes(raw)
    except RecursionError:
        raise MalformedMessage("the message's parts are nested too deeply to read") from None
    except _HEADER_ERRORS:
        # policy.default parses each part's Content-Type while it splits the parts, and a
        # garbled one anywhere stops it; compat32 splits on the raw text. Its headers come
        # undecoded, which `_header_text` and `_filename` make up for.
        pass
    try:
        return BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        raise MalformedMessage("the message's parts are nested too deeply to read") from None
    except _HEADER_ERRORS as error:
        raise MalformedMessage(f"the message structure cannot be read: {error!r}") from error


# --- headers -------------------------------------------------------------------------


def _header_text(message: Message[Any, Any], name: str) -> str | None:
    """The decoded value of the first `name` header, or None when absent."""
    try:
        value = message.get(name)
        if value is None or isinstance(value, BaseHeader):
            return None if value is None else str(value)
        return _decode_raw_header(str(value))  # compat32: as it came
    except _HEADER_ERRORS:
        raw_value = _raw_header(message, name)
        return None if raw_value is None else _decode_raw_header(raw_value)


def _raw_header(part: Message[Any, Any], name: str) -> str | None:
    """The first `name` header as it came, unparsed."""
    for raw_name, raw_value in part.raw_items():
        if raw_name.lower() == name.lower():
            return str(raw_value)
    return None


def _decode_raw_header(raw_value: str) -> str:
    try:
        return str(make_header(decode_header(raw_value)))
    except _HEADER_ERRORS:  # UnicodeError is a ValueError
        return raw_value  # encoded words left as they are: still readable, and one line


def _addresses(message: Message[Any, Any], name: str) -> list[tuple[str, str]]:
    """`(display name, lowercased address)` of each usable address in a header."""
    try:
        value = message.get(name)
    except _HEADER_ERRORS:
        value = _raw_header(message, name)
    if value is None:
        return []
    # A raw value is split before its encoded words are decoded: a decoded name may hold
    # the comma that separates addresses ("Müller, Hans").
    decoded = isinstance(value, BaseHeader)
    found = []
    for display_name, address in getaddresses([str(value)]):
        local, at, domain = address.strip().rpartition("@")
        if at and local and domain and not any(c.isspace() for c in address.strip()):
            shown_name = display_name if decoded else _decode_raw_header(display_name)
            found.append((one_line(shown_name), address.strip().lower()))
    return found


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _first_message_id(text: str | None) -> str | None:
    """The first `<id>` in a header; a bare `id@host` (some clients drop the brackets) is
    bracketed. Old clients write prose around the id in In-Reply-To, so it is searched."""
    if not text:
        return None
    found = _MESSAGE_ID_RE.search(text)
    if found:
        return _bracketed(found.group(1))
    bare = text.strip()
    return _bracketed(bare) if _BARE_MESSAGE_ID_RE.match(bare) else None


def _bracketed(message_id: str) -> str | None:
    return f"<{message_id}>" if len(message_id) + 2 <= MAX_MESSAGE_ID_CHARS else None


def _references(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    found = [
        bracketed
        for match in _MESSAGE_ID_RE.finditer(text)
        if (bracketed := _bracketed(match.group(1)))
    ]
    unique = _unique(found)
    if len(unique) <= MAX_REFERENCES:
        return unique
    return unique[:1] + unique[-(MAX_REFERENCES - 1) :]


def _sent_at(text: str | None) -> str | None:
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text.strip())
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    # A zone of -0000 means "unknown" (RFC 5322): the time is taken as UTC.
    return format_iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _auto_submitted(message: Message[Any, Any]) -> bool:
    auto = (_header_text(message, "Auto-Submitted") or "no").split(";")[0].strip().lower()
    if auto not in ("", "no"):
        return True
    precedence = (_header_text(message, "Precedence") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return True
    if (_header_text(message, "X-Autogenerated") or "").strip().lower() == "reply":
        return True
    # A bounce or delivery report (RFC 6522) is a machine's answer too.
    if _content_type(message) == "multipart/report":
        return True
    return any(_header_text(message, name) is not None for name in _AUTO_REPLY_HEADERS)


# --- body and attachments ------------------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    text: str
    from_html: bool  # rendered from HTML: a plain-text alternative is preferred to it


class _PartWalker:
    """Walks the MIME tree once: renders the body text and collects the attachments."""

    def __init__(self, max_attachments: int, max_attachment_bytes: int) -> None:
        self.max_attachments = max_attachments
        self.max_attachment_bytes = max_attachment_bytes
        self.attachments: list[Attachment] = []
        self.dropped = 0
        self._seen = 0

    def body_text(self, part: Message[Any, Any], depth: int = 0) -> _Rendered:
        """The text `part` shows; its attachments are collected on the way."""
        content_type = _content_type(part)
        if content_type.startswith("message/") or not part.is_multipart():
            return self._leaf(part)
        if depth >= MAX_PART_DEPTH:
            raise MalformedMessage(f"the message's parts are nested over {MAX_PART_DEPTH} deep")
        children = [
            _Rendered("", False) if child is None else self.body_text(child, depth + 1)
            for child in _children(part)
        ]
        if content_type == "multipart/alternative":
            return _preferred_alternative(children)
        shown = [child for child in children if child.text.strip()]
        return _Rendered(
            "\n\n".join(child.text.strip("\n") for child in shown),
            any(child.from_html for child in shown),
        )

    def _leaf(self, part: Message[Any, Any]) -> _Rendered:
        content_type = _content_type(part)
        if content_type.startswith("multipart/"):
            return _Rendered("", False)  # a nested multipart without a boundary: unreadable
        filename = _filename(part)
        is_body = (
            content_type in _BODY_TYPES and _disposition(part) != "attachment" and filename is None
        )
        if not is_body:
            self._add_attachment(part, filename)
            return _Rendered("", False)
        text = _decoded_text(part)
        if content_type == "text/html":
            return _Rendered(html_to_text(text), True)
        return _Rendered(text.replace("\r\n", "\n"), False)

    def _add_attachment(self, part: Message[Any, Any], filename: str | None) -> None:
        self._seen += 1
        if len(self.attachments) >= self.max_attachments:
            self.dropped += 1  # not even decoded: it is only counted
            return
        content = _part_bytes(part)
        size = len(content)
        disposition = _disposition(part)
        content_id = _first_message_id(_header_text(part, "Content-ID"))
        self.attachments.append(
            Attachment(
                filename=filename or f"attachment-{self._seen}",
                content_type=_content_type(part),
                size=size,
                content=content if size <= self.max_attachment_bytes else None,
                content_id=content_id[1:-1] if content_id else None,
                inline=disposition == "inline" or (disposition is None and bool(content_id)),
            )
        )


def _children(part: Message[Any, Any]) -> list[Message[Any, Any] | None]:
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child if isinstance(child, Message) else None for child in payload]


def _content_type(part: Message[Any, Any]) -> str:
    """`type/subtype`, lowercase; text/plain (RFC 2045's default) when absent or garbled."""
    try:
        return part.get_content_type()
    except _HEADER_ERRORS:
        found = _CONTENT_TYPE_RE.match(_raw_header(part, "Content-Type") or "")
        return found.group(1).lower() if found else "text/plain"


def _disposition(part: Message[Any, Any]) -> str | None:
    """The Content-Disposition, lowercase ("inline", "attachment"), or None without one."""
    try:
        return part.get_content_disposition()
    except _HEADER_ERRORS:
        disposition = (_raw_header(part, "Content-Disposition") or "").split(";")[0]
        return disposition.strip().lower() or None


def _decoded_payload(part: Message[Any, Any]) -> bytes:
    """A leaf's content with its transfer encoding undone; as it came when the
    Content-Transfer-Encoding header cannot be read."""
    try:
        payload = part.get_payload(decode=True)
    except _HEADER_ERRORS:
        raw_payload = part.get_payload()
        try:
            # The parser read the bytes as ASCII, escaping the others as surrogates.
            payload = (
                raw_payload.encode("ascii", "surrogateescape")
                if isinstance(raw_payload, str)
                else b""
            )
        except UnicodeError:
            payload = b""
    return payload if isinstance(payload, bytes) else b""


def _preferred_alternative(children: list[_Rendered]) -> _Rendered:
    """A plain-text alternative when there is one with text, else the last (the richest,
    RFC 2046) that has text."""
    shown = [child for child in children if child.text.strip()]
    plain = [child for child in shown if not child.from_html]
    if plain:
        return plain[0]
    return shown[-1] if shown else _Rendered("", False)


def _filename(part: Message[Any, Any]) -> str | None:
    """The part's filename made safe to show and store, or None when it has none."""
    try:
        name = part.get_filename()
    except _HEADER_ERRORS:
        return None
    if name is None:
        return None
    if "=?" in name:
        # Encoded words in a quoted filename break RFC 2231 but Outlook and Gmail send
        # them; policy.default decodes them, compat32 does not.
        name = _decode_raw_header(name)
    # Only the last path component: "../../etc/passwd" and "C:\\x\\y.pdf" name a file.
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        char for char in name if unicodedata.category(char) not in _UNSAFE_CHAR_CATEGORIES
    ).strip()
    if name in ("", ".", ".."):
        return None
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) < _MAX_KEPT_EXTENSION_CHARS:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def _part_bytes(part: Message[Any, Any]) -> bytes:
    """A leaf's decoded content; for a forwarded message (message/rfc822), its bytes."""
    if part.is_multipart():
        inner = part.get_payload(0)
        try:
            return inner.as_bytes() if isinstance(inner, Message) else b""
        except (*_HEADER_ERRORS, RecursionError):  # UnicodeError is a ValueError
            return b""
    return _decoded_payload(part)


def _decoded_text(part: Message[Any, Any]) -> str:
    """A text part as str; an unknown or wrong charset gives replacement characters."""
    payload = _decoded_payload(part)
    try:
        charset = part.get_content_charset() or "utf-8"
    except _HEADER_ERRORS:
        charset = "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, UnicodeError):
        # Unknown ("x-unknown"), or not a text codec ("base64", "idna" with replace).
        return payload.decode("utf-8", errors="replace")


# --- HTML to text --------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"})
_HTML_SPACE = " \t\n\r\f"
_HTML_SPACE_RE = re.compile(r"[ \t\n\r\f]+")
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _HtmlText(HTMLParser):
    """Text of an HTML document: what a reader sees, with a line break per block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._chunks: list[str] = []
        self._pending_newlines = 0  # asked for by block edges; adjacent edges make one
        self._hidden_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif tag == "br":
            self._emit("\n")  # unlike block edges, each <br> is a line break
        elif tag in _BLOCK_TAGS:
            self._block_edge(tag)
            if tag == "pre":
                self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._emit("\n")
        elif tag in _BLOCK_TAGS:
            self._block_edge(tag)  # <hr/>, <p/>: an empty block, no end tag follows

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._block_edge(tag)
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        if self._pre_depth:
            self._emit(data)
        elif data.strip(_HTML_SPACE):
            # Outside <pre>, HTML shows a run of white space (line breaks too) as one space;
            # a no-break space is not white space to HTML and stays.
            self._emit(_HTML_SPACE_RE.sub(" ", data))
        elif not self._pending_newlines:
            self._chunks.append(" ")  # between two inline elements: a space

    def _block_edge(self, tag: str) -> None:
        wanted = 2 if tag in _PARAGRAPH_TAGS else 1
        self._pending_newlines = max(self._pending_newlines, wanted)

    def _emit(self, text: str) -> None:
        if self._pending_newlines and self._chunks:
            self._chunks.append("\n" * self._pending_newlines)
        self._pending_newlines = 0
        self._chunks.append(text)

    def text(self) -> str:
        lines = [line.strip(" \t") for line in "".join(self._chunks).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML body: scripts and styles dropped, one line break
    per block element, a blank line around paragraphs."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


# --- quoted history of a reply -------------------------------------------------------

# The line a mail client writes above the quoted message, in the languages of the common
# clients: "On Tue, 2 Jan 2024 at 10:00, Ann <ann@example.com> wrote:" (Gmail, Apple
# Mail, Thunderbird), "Le ... a écrit :", "Am ... schrieb ...:", and so on. Gmail folds
# it over two lines when it is long, so two lines joined are matched too.
_ATTRIBUTION_RE = re.compile(
    r"^\s*(?:"
    r"on\s.{4,300}\swrote\s*:"
    r"|le\s.{4,300}\sa\s+écrit\s*:"
    r"|am\s.{4,300}\sschrieb.{0,300}:"
    r"|el\s.{4,300}\sescribió\s*:"
    r"|op\s.{4,300}\sschreef.{0,300}:"
    r"|il\s.{4,300}\sha\s+scritto\s*:"
    r"|em\s.{4,300}\sescreveu\s*:"
    r")\s*$",
    re.IGNORECASE,
)
# Outlook's separator, and variants with spaces or more dashes.
_ORIGINAL_MESSAGE_RE = re.compile(r"^\s*-{2,}\s*original message\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_FROM_RE = re.compile(r"^\s*\*?from\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_SENT_RE = re.compile(r"^\s*\*?(?:sent|date)\s*:\*?\s+\S", re.IGNORECASE)
_UNDERSCORE_RULE_RE = re.compile(r"^\s*_{10,}\s*$")
_OUTLOOK_HEADER_SPAN = 3  # "Sent:" follows "From:" within this many lines


def new_text_of_reply(text: str) -> str:
    """The part of a reply above the quoted history.

    Cuts at the first attribution line ("On ..., Ann wrote:", also folded over two
    lines), "-----Original Message-----", or an Outlook "From: ... Sent: ..." block, then
    drops trailing ">"-quoted lines. Returns `text` unchanged when nothing is quoted, and
    also when everything is (a forwarded message with nothing added is still news).
    """
    lines = text.replace("\r\n", "\n").split("\n")
    cut = _quote_start(lines)
    end = cut
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    quoted_tail = any(line.lstrip().startswith(">") for line in lines[end:cut])
    if cut == len(lines) and not quoted_tail:
        return text
    new_text = "\n".join(lines[:end]).rstrip()
    return new_text if new_text.strip() else text


def _is_attribution(line: str) -> bool:
    # An attribution names a date: a digit keeps "On Monday Ann wrote:" in new text.
    return bool(_ATTRIBUTION_RE.match(line)) and any(char.isdigit() for char in line)


def _quote_start(lines: list[str]) -> int:
    """The index of the first line of the quoted history, len(lines) when none."""
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _is_attribution(line) or (
            following and _is_attribution(f"{line.rstrip()} {following.strip()}")
        ):
            return index
        if _ORIGINAL_MESSAGE_RE.match(line):
            return index
        if _OUTLOOK_FROM_RE.match(line) and any(
            _OUTLOOK_SENT_RE.match(later)
            for later in lines[index + 1 : index + 1 + _OUTLOOK_HEADER_SPAN]
        ):
            # Outlook draws a rule of underscores above the block: it goes too.
            if index and _UNDERSCORE_RULE_RE.match(lines[index - 1]):
                return index - 1
            return index
    return len(lines)


# --- SES receipt verdicts ------------------------------------------------------------

_REFUSED_DMARC_POLICIES = frozenset({"reject", "quarantine"})


def receipt_refusal(receipt: Mapping[str, Any]) -> str | None:
    """Why a received message must not reach a case, or None when it may.

    `receipt` is the `receipt` object of an SES receiving notification (the S3, SNS and
    Lambda actions carry the same one): `virusVerdict`, `spamVerdict`, `spfVerdict`,
    `dkimVerdict` and `dmarcVerdict` are each `{"status": "PASS" | "FAIL" | "GRAY" |
    "PROCESSING_FAILED"}`, and `dmarcPolicy` ("none" | "quarantine" | "reject", present
    only when DMARC fails) is what the sender's domain asks of messages failing it.

    - "virus": `virusVerdict` FAIL;
    - "spam": `spamVerdict` FAIL;
    - "dmarc": `dmarcVerdict` FAIL and the domain asks to reject or quarantine: the From
      address is likely forged, and a case would answer someone who never wrote.
    A missing verdict, GRAY or PROCESSING_FAILED is not a refusal: SES could not tell, and
    losing a customer's mail is worse than a stray case. SPF and DKIM alone do not refuse
    either: DMARC is the domain's own word on how to treat their failures.
    """
    if _verdict(receipt, "virusVerdict") == "FAIL":
        return "virus"
    if _verdict(receipt, "spamVerdict") == "FAIL":
        return "spam"
    dmarc_policy = receipt.get("dmarcPolicy")
    if (
        _verdict(receipt, "dmarcVerdict") == "FAIL"
        and isinstance(dmarc_policy, str)
        and dmarc_policy.strip().lower() in _REFUSED_DMARC_POLICIES
    ):
        return "dmarc"
    return None


def _verdict(receipt: Mapping[str, Any], name: str) -> str | None:
    verdict = receipt.get(name)
    if not isinstance(verdict, Mapping):
        return None
    status = verdict.get("status")
    return status.strip().upper() if isinstance(status, str) else None
