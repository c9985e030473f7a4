"""A lead's fields, found in its payload and normalized as a contact's fields are.

Each lead field comes from the path its source maps it to (`field_map`), or, when the
source maps it not, from the first of its common names holding text (`DEFAULT_NAMES`,
then the same names in any letter case among the payload's top-level keys). A mapped field
is looked up at its path only: the admin said where it is, and a common name elsewhere in
the payload may mean something else.

Nothing a sender puts in a payload makes mapping fail: a value of the wrong type (a list,
an object, a boolean where text is expected) is ignored, an invalid email, phone or
country is dropped, and each is said in `warnings`. A lead with neither a usable email nor
a usable phone cannot become a contact: `rejection` says why.

Consent to email (`email_consent`) counts only when the person said yes: true, 1, or the
text "true", "yes", "on", "1" or "subscribed" (any case). No, a blank or no field at all
changes nothing: an unticked box is not an unsubscribe. A form field sent several times
counts its last value (a checkbox after a hidden field of the same name).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_core import normalize
from crm_core.fields import (
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_SAFE_INTEGER,
    MAX_TAG_CHARS,
    MAX_TAGS,
)
from crm_core.leads.payload import lookup

MAX_NAME_CHARS = 100  # fields.Name
MAX_TITLE_CHARS = 150  # fields.Title
MAX_PHONE_CHARS = 40  # fields.Phone
MAX_UTM_CHARS = 200
MAX_URL_CHARS = 2048  # activities.models.Url
MAX_REFERRER_CHARS = 2048
# The form_submission activity's `fields`: FormSubmissionFields' limits.
MAX_FORM_FIELDS = 100
MAX_FORM_KEY_CHARS = 100
MAX_FORM_VALUE_CHARS = 2000
MAX_FORM_DEPTH = 8
# How much of a refused value a warning repeats (it is the sender's own data, shown to
# the tenant's admins in the deliveries log, never logged).
_SHOWN_CHARS = 60
# A phone kept as typed (not parseable without a country) must still look like one.
_PHONE_CHARS = re.compile(r"^[0-9+()\-./ ]+((ext\.?|x|#) ?[0-9]+)?$", re.IGNORECASE)
_MIN_PHONE_DIGITS = 6
_URL = re.compile(r"^https?://\S+$")
_UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "email": ("email", "Email", "email_address", "emailAddress", "e-mail"),
    "first_name": ("first_name", "firstName", "fname", "given_name"),
    "last_name": ("last_name", "lastName", "lname", "surname", "family_name"),
    "full_name": ("full_name", "fullName", "name"),
    "phone": ("phone", "phone_number", "phoneNumber", "mobile", "tel"),
    "company": ("company", "company_name", "companyName", "organization"),
    "title": ("title", "job_title", "jobTitle"),
    "country": ("country", "country_code"),
    "tags": ("tags",),
    **{name: (name, "utm" + name[4:].capitalize(), f"utm.{name[4:]}") for name in _UTM_FIELDS},
    "page_url": ("page_url", "pageUrl", "url"),
    "referrer": ("referrer", "referer"),
    "email_consent": (
        "email_consent",
        "emailConsent",
        "consent",
        "marketing_consent",
        "marketingConsent",
        "opt_in",
        "optIn",
        "newsletter",
    ),
}
_YES = frozenset({"true", "yes", "on", "1", "subscribed"})
_NO = frozenset({"false", "no", "off", "0", "unsubscribed"})

# Keys whose values are never copied into the activity: credentials and anti-bot tokens.
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "csrf",
    "captcha",
    "cardnumber",
    "creditcard",
)
_SECRET_KEYS = frozenset({"pwd", "pin", "cvv", "cvc", "ssn", "auth", "authorization"})


@dataclass(frozen=True)
class MappedLead:
    """What a lead says about its person, normalized; None where it says nothing usable."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    # The company's name as the lead gives it. A contact links to a company by its email's
    # domain (a name is no key); the name stays in the submission's fields.
    company: str | None = None
    title: str | None = None
    country: str | None = None
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    utm: Mapping[str, str] = field(default_factory=dict)
    page_url: str | None = None
    referrer: str | None = None
    # The person said yes to email (the evidence is the lead itself).
    consent: bool = False
    # The payload's scalar fields as text, for the form_submission activity.
    form_fields: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    rejection: str | None = None

    @property
    def usable(self) -> bool:
        return self.rejection is None

    @property
    def note(self) -> str | None:
        """The warnings as one line (for the lead's `reason`), or None."""
        return "; ".join(self.warnings) or None


class _Finder:
    """Looks lead fields up in one payload, and keeps what it had to ignore."""

    def __init__(self, payload: Mapping[str, Any], field_map: Mapping[str, str]) -> None:
        self.payload = payload
        self.field_map = field_map
        self.folded = {k.casefold(): k for k in payload if isinstance(k, str)}
        self.warnings: list[str] = []
        # Why a field found nothing usable, for a rejection's reason.
        self.missing: dict[str, str] = {}

    def raw(
        self, name: str, fits: Callable[[Any], bool], expected: str = "text"
    ) -> tuple[Any, str | None]:
        """The value for lead field `name` and where it was found (None: nowhere): at its
        mapped path, else the first common name holding a value that `fits`. A value that
        does not fit is ignored, with a warning."""
        if name in self.field_map:
            candidates: list[tuple[Any, str]] = [
                (lookup(self.payload, self.field_map[name]), self.field_map[name])
            ]
            if _blank(candidates[0][0]):
                self.missing[name] = f"{name}: nothing at {candidates[0][1]!r}"
                return None, None
        else:
            names = DEFAULT_NAMES.get(name, ())
            candidates = [(lookup(self.payload, n), n) for n in names]
            candidates += [
                (self.payload[key], key)
                for n in names
                if (key := self.folded.get(n.casefold())) is not None and key != n
            ]
        unfit = None
        for value, path in candidates:
            if _blank(value):
                continue
            if fits(value):
                return value, path
            unfit = unfit or (value, path)
        if unfit is not None:
            kind = _kind(unfit[0])
            self.missing[name] = f"{name}: {unfit[1]!r} holds {kind}, not {expected}"
            self.warnings.append(f"{self.missing[name]}; ignored")
        return None, None

    def text(self, name: str, limit: int) -> str | None:
        value, path = self.raw(name, lambda v: _text(v) is not None)
        if path is None:
            return None
        text = _text(value)
        assert text is not None
        return text[:limit].rstrip()

    def refused(self, name: str, message: str) -> None:
        self.warnings.append(f"{message}; dropped")
        self.missing[name] = message


def map_lead(payload: Mapping[str, Any], field_map: Mapping[str, str]) -> MappedLead:
    """The lead's fields from `payload` (a parsed body) by the source's `field_map`."""
    find = _Finder(payload, field_map)
    country = _country(find)
    email = _email(find)
    phone = _phone(find, country)
    first, last = find.text("first_name", MAX_NAME_CHARS), find.text("last_name", MAX_NAME_CHARS)
    if first is None or last is None:
        full = find.text("full_name", MAX_NAME_CHARS * 2 + 1)
        if full is not None:
            given, _, family = full.partition(" ")
            first = first or given[:MAX_NAME_CHARS].rstrip() or None
            last = last or family.strip()[:MAX_NAME_CHARS].rstrip() or None
    utm = {name: text for name in _UTM_FIELDS if (text := find.text(name, MAX_UTM_CHARS))}
    page_url = find.text("page_url", MAX_URL_CHARS + 1)
    if page_url is not None and (len(page_url) > MAX_URL_CHARS or not _URL.match(page_url)):
        find.refused("page_url", f"page_url {_shown(page_url)} is not an http(s) URL")
        page_url = None
    rejection = None
    if email is None and phone is None:
        rejection = "no usable email or phone: " + (
            "; ".join(find.missing[n] for n in ("email", "phone") if n in find.missing)
            or "the payload has no email or phone field"
        )
    return MappedLead(
        email=email,
        first_name=first,
        last_name=last,
        phone=phone,
        company=find.text("company", MAX_NAME_CHARS),
        title=find.text("title", MAX_TITLE_CHARS),
        country=country,
        tags=_tags(find),
        attributes=_attributes(find),
        utm=utm,
        page_url=page_url,
        referrer=find.text("referrer", MAX_REFERRER_CHARS),
        consent=_consent(find),
        form_fields=form_fields(payload),
        warnings=tuple(find.warnings),
        rejection=rejection,
    )


# Fields with rules ------------------------------------------------------------------------
def _email(find: _Finder) -> str | None:
    text = find.text("email", normalize.MAX_EMAIL_CHARS + 1)
    if text is None:
        return None
    try:
        return normalize.email(text)
    except ValueError:
        find.refused("email", f"email {_shown(text)} is not a valid address")
        return None


def _phone(find: _Finder, country: str | None) -> str | None:
    text = find.text("phone", MAX_PHONE_CHARS + 1)
    if text is None:
        return None
    # A national number without a country stays as typed: keep it if it looks like one.
    digits = sum(c.isdigit() for c in text)
    if len(text) > MAX_PHONE_CHARS or digits < _MIN_PHONE_DIGITS or not _PHONE_CHARS.match(text):
        find.refused("phone", f"phone {_shown(text)} is not a phone number")
        return None
    return normalize.phone(text, country)


def _country(find: _Finder) -> str | None:
    text = find.text("country", MAX_NAME_CHARS)
    if text is None:
        return None
    try:
        return normalize.country(text)
    except ValueError:
        find.refused("country", f"country {_shown(text)} is not an ISO 3166 two-letter code")
        return None


def _consent(find: _Finder) -> bool:
    value, path = find.raw("email_consent", lambda v: _yes_or_no(v) is not None, "yes or no")
    if path is None:
        return False
    return _yes_or_no(value) is True


def _yes_or_no(value: Any) -> bool | None:
    """True for a yes, False for a no, None for a value that says neither. Of a list (a
    form field sent several times), its last value."""
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().casefold()
        return True if word in _YES else False if word in _NO else None
    return None


def _tags(find: _Finder) -> tuple[str, ...]:
    value, path = find.raw("tags", lambda v: isinstance(v, str | list), "a list or text")
    if path is None:
        return ()
    values: list[Any] = value.split(",") if isinstance(value, str) else value
    tags: dict[str, None] = {}
    skipped = 0
    for raw in values:
        if _blank(raw):
            continue  # "a,,b" or a trailing comma
        text = _text(raw)
        try:
            tag = normalize.tag(text) if text is not None else None
        except ValueError:
            tag = None
        if tag is None or len(tag) > MAX_TAG_CHARS:
            skipped += 1
            continue
        tags.setdefault(tag, None)
    if skipped:
        find.warnings.append(f"{skipped} tag(s) skipped: not valid tags")
    if len(tags) > MAX_TAGS:
        find.warnings.append(f"{len(tags) - MAX_TAGS} tag(s) skipped: at most {MAX_TAGS}")
    return tuple(tags)[:MAX_TAGS]


def _attributes(find: _Finder) -> dict[str, Any]:
    """Custom attributes, from the field map's `attributes.<name>` targets only."""
    attributes: dict[str, Any] = {}
    for target, path in find.field_map.items():
        if not target.startswith("attributes.") or len(attributes) >= MAX_ATTRIBUTES:
            continue
        name = target.removeprefix("attributes.")
        value = lookup(find.payload, path)
        if _blank(value):
            continue
        stored = _attribute_value(value)
        if stored is None:
            find.warnings.append(f"{target}: {path!r} holds {_kind(value)}; ignored")
            continue
        attributes[name] = stored
    return attributes


def _attribute_value(value: Any) -> Any:
    """The value as a contact attribute stores it (fields.AttributeValue), or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else None
    if isinstance(value, float):
        storable = math.isfinite(value) and (value == 0 or 1e-15 <= abs(value) <= 1e15)
        return value if storable else None
    if isinstance(value, str):
        return value.strip()[:MAX_ATTRIBUTE_VALUE_CHARS] or None
    return None


# The activity's fields ----------------------------------------------------------------------
def form_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """The payload's scalar values as text, each under its dotted path (the path a field
    map would name: `contact.email`, `answers.0.value`), at most MAX_FORM_FIELDS of them,
    without secrets (passwords, tokens, card numbers, captcha answers)."""
    found: dict[str, str] = {}
    _walk(payload, "", 0, found)
    return found


def _walk(value: Any, path: str, depth: int, found: dict[str, str]) -> None:
    if len(found) >= MAX_FORM_FIELDS or depth > MAX_FORM_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            name = str(key)
            if not _secret(name):
                _walk(inner, f"{path}.{name}" if path else name, depth + 1, found)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _walk(inner, f"{path}.{index}" if path else str(index), depth + 1, found)
    elif value is not None and path and len(path) <= MAX_FORM_KEY_CHARS:
        found[path] = _scalar_text(value)[:MAX_FORM_VALUE_CHARS]


def _secret(key: str) -> bool:
    folded = re.sub(r"[^a-z0-9]", "", key.casefold())
    return folded in _SECRET_KEYS or any(part in folded for part in _SECRET_PARTS)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Text -----------------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    """Text as people mean it: numbers as digits, whitespace collapsed, NFC; else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    return text or None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "a " + type(value).__name__


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")
