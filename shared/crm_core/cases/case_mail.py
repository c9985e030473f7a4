"""A case's outbound email (an agent's reply, an acknowledgment): one MIME message that
the customer's mail client threads with the rest of the conversation.

Threading is what the customer sees: clients group messages by `In-Reply-To` and
`References` (RFC 5322, 3.6.4), and some by subject, so a reply carries
- `In-Reply-To`: the message it answers (the conversation's latest);
- `References`: the conversation's first message and its most recent ones
  (`thread_headers`; long threads are trimmed in the middle, as RFC 5322 allows);
- `Subject`: the case's subject with one "Re: " (`reply_subject`; "Re: Re: Re:" is noise);
- `Message-ID`: our own id, naming the conversation entry and the case (`message_id`).
  SES replaces a Message-ID it is given with its own (and the Date with the time it
  accepted the message; see "Amazon SES header fields"), so the id a customer's reply
  names in In-Reply-To is the one SES assigned: record that one from the send response
  for `thread_headers`. The reply address (reply_address.py) finds the case either way.
An agent's reply gets no `Auto-Submitted` header: a person wrote it, and the customer's
auto-responder may answer it. An automatic message passes `Auto-Submitted:
auto-replied` (RFC 3834) in `extra_headers`.

Nothing in a header comes from a customer or a user unchecked: addresses must be plain
ASCII addr-specs (SES takes nothing else; an IDN domain is sent as punycode), the subject
and any other value is made one line (`crm_core.fields.one_line`), so a CR/LF in a subject
cannot start a header of its own. `build_case_email` returns the bytes SESv2 `SendEmail`
takes as `Content.Raw`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from crm_core.fields import one_line

# References trimmed to the first id and the most recent ones: 20 ids of ~60 characters
# fold into lines well under 998 characters, and reach back far enough for any client.
MAX_REFERENCES = 20
# A message id as we write it in a header: printable ASCII (a non-ASCII one would be
# MIME-encoded in an unstructured header, which no client would match), one "@" at least.
_MESSAGE_ID_RE = re.compile(r"^<[!-;=?-~]+@[!-;=?-~]+>$")
# RFC 5322 dot-atom text, for the ids we make.
_ATOM_TEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_OWN_MESSAGE_ID_RE = re.compile(rf"^<{_ATOM_TEXT}@{_ATOM_TEXT}>$")
# "Re:", and the reply prefixes of German (Aw), Scandinavian (Sv) and Dutch (Antw)
# clients, possibly repeated, counted ("Re[2]:") or spaced ("RE :").
_REPLY_PREFIX_RE = re.compile(
    r"^(?:\s*(?:re|aw|sv|antw)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.IGNORECASE
)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable, no colon
# Set here, or naming recipients: `extra_headers` may not set them.
_RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Return-Path", "Subject", "Date",
        "Message-ID", "In-Reply-To", "References", "X-CRM-Tenant", "X-CRM-Case",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    )
)  # fmt: skip


def message_id(entry_id: str, case_id: str, domain: str) -> str:
    """`<entry.case@domain>`, lowercase: the Message-ID of one conversation entry's email."""
    value = f"<{entry_id}.{case_id}@{domain}>".lower()
    if not _OWN_MESSAGE_ID_RE.match(value):
        raise ValueError(f"cannot make a message id of {entry_id!r}, {case_id!r}, {domain!r}")
    return value


def thread_key(message_id: str) -> str:
    """The digest a Message-ID is looked up by (`keys.case_message_id`): of the id inside
    its angle brackets, lower-cased (clients keep ids as written, but some change the case
    of the domain), so an id of any length makes a short key."""
    bare = message_id.strip().removeprefix("<").removesuffix(">").strip().lower()
    return hashlib.sha256(bare.encode()).hexdigest()[:32]


def thread_headers(parent_ids: Sequence[str]) -> tuple[str | None, list[str]]:
    """`(In-Reply-To, References)` of a reply to a conversation whose message ids are
    `parent_ids`, oldest first. Ids that could not be written in a header are left out;
    References keeps the first id and the `MAX_REFERENCES - 1` most recent ones."""
    usable = [parent.strip() for parent in parent_ids if _MESSAGE_ID_RE.match(parent.strip())]
    if not usable:
        return None, []
    references = list(dict.fromkeys(usable))
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return usable[-1], references


def reply_subject(subject: str) -> str:
    """`subject` with a single "Re: " in front, however many reply prefixes it had."""
    rest = one_line(_REPLY_PREFIX_RE.sub("", one_line(subject)))
    return f"Re: {rest}" if rest else "Re:"


def build_case_email(
    *,
    from_address: str,
    from_name: str | None,
    to_address: str,
    reply_to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    tenant_id: str,
    case_id: str,
    extra_headers: Mapping[str, str] | None = None,
) -> bytes:
    """The raw MIME message (SESv2 `Content.Raw`); ValueError for an address that is not
    one, a malformed own message id, or an extra header that is reserved or misnamed.

    A message answering another (`in_reply_to`) gets the reply subject."""
    message = EmailMessage()
    # A display name stored before fields.OneLine may hold a line break (as in messages.py).
    name = one_line(from_name or "")
    sender = _addr_spec(from_address)
    message["From"] = Address(display_name=name, addr_spec=sender) if name else sender
    message["To"] = _addr_spec(to_address)
    message["Reply-To"] = _addr_spec(reply_to)
    message["Subject"] = reply_subject(subject) if in_reply_to else one_line(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    if not _OWN_MESSAGE_ID_RE.match(message_id):
        raise ValueError(f"not a message id of ours: {message_id!r}")
    message["Message-ID"] = message_id
    if in_reply_to and _MESSAGE_ID_RE.match(in_reply_to.strip()):
        message["In-Reply-To"] = in_reply_to.strip()
    kept_references = [ref.strip() for ref in references if _MESSAGE_ID_RE.match(ref.strip())]
    if kept_references:
        # Space-separated ids: the email package folds the line between them.
        message["References"] = " ".join(kept_references)
    message["X-CRM-Tenant"] = one_line(tenant_id)
    message["X-CRM-Case"] = one_line(case_id)
    for header_name, value in (extra_headers or {}).items():
        if not _HEADER_NAME_RE.match(header_name):
            raise ValueError(f"not a header name: {header_name!r}")
        if header_name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"{header_name} is set by build_case_email, not extra_headers")
        message[header_name] = one_line(value)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return bytes(message)


def _addr_spec(address: str) -> str:
    """`address` as an ASCII addr-spec (the domain as punycode); ValueError otherwise.

    Address() parses the whole value and refuses leftovers, so "a@b.example\\r\\nBcc: c@d"
    or "Ann <a@b.example>" is refused, not cut."""
    local, at, domain = address.strip().rpartition("@")
    if (
        not (at and local and domain)
        or not local.isascii()
        or _SPACE_OR_CONTROL.search(address.strip())
    ):
        raise ValueError(f"not an email address SES can send to: {address!r}")
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
        parsed = Address(addr_spec=f"{local}@{ascii_domain}")
    except (ValueError, IndexError) as error:  # UnicodeError is a ValueError
        raise ValueError(f"not an email address SES can send to: {address!r}") from error
    if not parsed.username or not parsed.domain or parsed.addr_spec != f"{local}@{ascii_domain}":
        raise ValueError(f"not an email address SES can send to: {address!r}")
    return parsed.addr_spec
