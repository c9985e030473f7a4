"""A lead's payload: parsed from its raw body (JSON object or form-encoded), and looked up
by dotted path (`contact.email`, `answers.0.value`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from crm_core import strict_json

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MEDIA_TYPES = (JSON, FORM)
MAX_FORM_FIELDS = 1000


class PayloadError(ValueError):
    """The body is not a payload we can read; the message says why, for the sender."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse(media: str, text: str) -> dict[str, Any]:
    """The payload as a dict. A form field sent several times becomes a list."""
    if not text.strip():
        raise PayloadError("the body is empty")
    if media == FORM:
        return _form(text)
    try:
        # Strict (RFC 8259, nesting bounded): no NaN or 1e400 reaches the mapping, the stored
        # lead or its activity, and the processor reads a stored payload as the webhook did.
        parsed = strict_json.loads(text, "the body")
    except strict_json.JsonRefused as refused:
        raise PayloadError(str(refused)) from None
    if not isinstance(parsed, dict):
        raise PayloadError("the body must be a JSON object")
    try:
        # JSON escapes can spell lone surrogates, which are not UTF-8: DynamoDB refuses them.
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise PayloadError("the body contains invalid Unicode (a lone surrogate)") from None
    return parsed


def _form(text: str) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the body is not valid form encoding") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def lookup(payload: Any, path: str) -> Any:
    """The value at a dotted path, or None. A number segment also indexes a list; a name
    with dots in it (a form field `contact.email`) is found whole first."""
    if isinstance(payload, dict) and path in payload:
        return payload[path]
    current = payload
    for segment in path.split("."):
        if isinstance(current, dict):
            current = current.get(segment)
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return None
        if current is None:
            return None
    return current
