"""Normalization of the values people type: emails, phones, domains, tags, countries.

email-validator and phonenumbers are imported on first use, not at cold start.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crm_core.countries import ISO_3166_ALPHA2

MAX_EMAIL_CHARS = 254
# The special-use domain names email-validator refuses an address under (RFC 6761).
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9 _.:/+-]*$")
_DOMAIN_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# What the API takes as a company's domain (fields.Domain): a domain name, or an http(s)
# URL whose host it is (a port and a path are dropped); labels of letters, digits and inner
# hyphens, the last one starting with a letter. `domain` reads anything of this form.
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN_INPUT = (
    f"^([Hh][Tt][Tt][Pp][Ss]?://)?({_LABEL}\\.)+[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    "\\.?(:[0-9]{1,5})?(/[!-~]*)?$"
)


def email(value: str) -> str:
    """A syntactically valid address, lower-cased, so one person has one key per tenant."""
    from email_validator import EmailNotValidError, validate_email

    text = value.strip()
    if len(text) > MAX_EMAIL_CHARS:
        raise ValueError(f"an email address has at most {MAX_EMAIL_CHARS} characters")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return str(result.normalized).lower()


def phone(value: str, country: str | None = None) -> str:
    """E.164 when the number can be parsed (with the contact's country as a hint), else as typed."""
    text = " ".join(value.split())
    if not text:
        raise ValueError("a phone number cannot be blank")
    e164 = _e164(text, country)
    # Some odd numbers lose a digit each time they are parsed ("+49000000" -> "+4900000"):
    # keep those as typed, so that normalizing a stored phone again never changes it.
    if e164 is None or _e164(e164, None) != e164:
        return text
    return e164


def _e164(text: str, country: str | None) -> str | None:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def domain(value: str) -> str:
    """`https://www.Acme.com/about` -> `acme.com`."""
    text = value.strip().lower()
    if "//" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    host = host.rstrip(".")
    if host.startswith("www.") and host.count(".") > 1:
        host = host[4:]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid domain name") from None
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_DOMAIN_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError("not a valid domain name")
    return host


def tag(value: str) -> str:
    text = " ".join(value.split()).lower()
    if not _TAG_RE.match(text):
        raise ValueError("a tag starts with a letter or digit and has no special characters")
    return text


def tags(values: list[str], max_count: int, max_chars: int) -> list[str]:
    """Normalized, de-duplicated, first-seen order."""
    seen: dict[str, None] = {}
    for raw in values:
        normalized = tag(raw)
        if len(normalized) > max_chars:
            raise ValueError(f"a tag has at most {max_chars} characters")
        seen.setdefault(normalized, None)
    if len(seen) > max_count:
        raise ValueError(f"at most {max_count} tags")
    return list(seen)


def country(value: str) -> str:
    code = value.strip().upper()
    if code not in ISO_3166_ALPHA2:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code
