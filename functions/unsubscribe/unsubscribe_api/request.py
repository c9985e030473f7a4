"""What the unsubscribe routes read from a request: the link's token, the POST's form, and
whether the client wants JSON. A refusal is raised as `Refusal`, answered by routes.py."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

from crm_core.campaigns import unsubscribe_tokens
from crm_core.campaigns.unsubscribe_tokens import InvalidToken, TokenClaims, TokenKey
from crm_core.campaigns.unsubscribing import Method

MAX_BODY_BYTES = 8 * 1024
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
PAGE_FIELD, PAGE_VALUE = "origin", "page"
INVALID_LINK = "This unsubscribe link is not valid. Use the link of a more recent email."


class Refusal(Exception):
    """A request the routes answer with a 4xx (a page, or problem+json to a JSON client)."""

    def __init__(self, status: int, title: str, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.slug, self.detail = status, title, slug, detail


def claims(event: dict[str, Any], key: TokenKey) -> tuple[str, TokenClaims]:
    """The link's token and what it says (never logged: it is the link's authority)."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise Refusal(400, "Bad request", "bad-request", INVALID_LINK)
    try:
        return token, unsubscribe_tokens.verify(key.secret, token)
    except InvalidToken:
        # Never which part failed (forged, altered, another key's, expired).
        raise Refusal(400, "Bad request", "bad-request", INVALID_LINK) from None


def form(event: dict[str, Any]) -> dict[str, list[str]]:
    """The POST body's form fields (any body is accepted: the token decides)."""
    text = str(event.get("body") or "")
    if event.get("isBase64Encoded"):
        if len(text) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            raise _too_large()
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return {}
    else:
        raw = text.encode("utf-8", errors="replace")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}


def _too_large() -> Refusal:
    return Refusal(
        413, "Payload too large", "payload-too-large", f"the body is over {MAX_BODY_BYTES} bytes"
    )


def method(fields: dict[str, list[str]]) -> Method:
    """RFC 8058's POST carries exactly `List-Unsubscribe=One-Click`; our page adds its
    own field."""
    return Method.ONE_CLICK if fields == {ONE_CLICK_FIELD: [ONE_CLICK_VALUE]} else Method.PAGE


def http_method(event: dict[str, Any]) -> str:
    return str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET"))


def request_id(event: dict[str, Any]) -> str | None:
    found = (event.get("requestContext") or {}).get("requestId")
    return str(found) if found else None


def wants_json(event: dict[str, Any]) -> bool:
    """JSON when the client asks for it before (or without) HTML."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    accept = headers.get("accept", "").lower()
    at_json = accept.find("json")
    if at_json < 0:
        return False
    at_html = accept.find("text/html")
    return at_html < 0 or at_json < at_html
