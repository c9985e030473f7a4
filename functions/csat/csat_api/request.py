"""What the satisfaction routes read from a request: the link's token, the POST's rating
(form-encoded from the page, or JSON), and whether the client wants JSON. A refusal is
raised as `Refusal`, answered by routes.py."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from crm_core.cases import csat_tokens
from crm_core.cases.csat_tokens import CsatClaims, InvalidToken
from crm_core.records.case import RatingCreate
from crm_core.signed_tokens import TokenKey

# A 2,000-character comment form-encoded: up to 9 bytes a character for CJK text (3 UTF-8
# bytes, each %XX), 12 for an emoji. 24 KiB takes any comment the model accepts in most
# scripts; the model's own limit (422) still applies below it.
MAX_BODY_BYTES = 24 * 1024
SCORE_FIELD, COMMENT_FIELD = "score", "comment"
INVALID_LINK = "This satisfaction link is not valid. Use the link of the most recent email."
EXPIRED_LINK = (
    "This satisfaction link has expired: links can be used for "
    f"{csat_tokens.VALID_DAYS} days after the case was solved."
)
BAD_SCORE = "Choose a score from 1 (very dissatisfied) to 5 (very satisfied)."


class Refusal(Exception):
    """A request the routes answer with a 4xx (a page, or problem+json to a JSON client)."""

    def __init__(self, status: int, title: str, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.slug, self.detail = status, title, slug, detail
        self.extra = extra


def claims(event: dict[str, Any], key: TokenKey) -> tuple[str, CsatClaims]:
    """The link's token and what it says (never logged: it is the link's authority)."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise Refusal(400, "Bad request", "bad-request", INVALID_LINK)
    try:
        return token, csat_tokens.verify(key.secret, token)
    except InvalidToken as invalid:
        # Never which check failed (forged, altered, another key's or use's); an expired
        # link may say so, since only a link we issued gets that far.
        detail = EXPIRED_LINK if "expired" in str(invalid) else INVALID_LINK
        raise Refusal(400, "Bad request", "bad-request", detail) from None


def rating(event: dict[str, Any], raw: bytes) -> RatingCreate:
    """The POST's rating (`raw`, its body): JSON `{"score", "comment"?}` or the page's form."""
    if _is_json(event):
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise Refusal(400, "Bad request", "bad-request", "the body is not JSON") from None
    else:
        body = _form_rating(raw)
    try:
        return RatingCreate.model_validate(body)
    except ValidationError as invalid:
        errors = [
            {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]}
            for e in invalid.errors(include_url=False, include_input=False)
        ]
        raise Refusal(422, "Validation failed", "validation", BAD_SCORE, errors=errors) from None


def _form_rating(raw: bytes) -> dict[str, Any]:
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        fields = {}
    body: dict[str, Any] = {}
    scores = fields.get(SCORE_FIELD) or []
    if len(scores) == 1:
        score = scores[0].strip()
        # The form's value is text; only a plain number becomes one (strict validation).
        plain = score.isascii() and score.isdigit() and len(score) <= 3
        body["score"] = int(score) if plain else score
    elif scores:
        body["score"] = scores  # two scores: refused
    comments = fields.get(COMMENT_FIELD) or []
    # An empty textarea is no comment.
    if len(comments) == 1 and comments[0].strip():
        body["comment"] = comments[0]
    elif len(comments) > 1:
        body["comment"] = comments
    return body


def body(event: dict[str, Any]) -> bytes:
    """The POST's body, at most MAX_BODY_BYTES (413 otherwise)."""
    text = str(event.get("body") or "")
    if event.get("isBase64Encoded"):
        if len(text) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            raise _too_large()
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(400, "Bad request", "bad-request", "the body is not base64") from None
    else:
        raw = text.encode("utf-8", errors="replace")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    return raw


def _too_large() -> Refusal:
    return Refusal(
        413, "Payload too large", "payload-too-large", f"the body is over {MAX_BODY_BYTES} bytes"
    )


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def _is_json(event: dict[str, Any]) -> bool:
    media = _headers(event).get("content-type", "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def http_method(event: dict[str, Any]) -> str:
    return str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET"))


def request_id(event: dict[str, Any]) -> str | None:
    found = (event.get("requestContext") or {}).get("requestId")
    return str(found) if found else None


def wants_json(event: dict[str, Any]) -> bool:
    """JSON when the client asks for it before (or without) HTML, or sends JSON and does
    not ask for HTML."""
    accept = _headers(event).get("accept", "").lower()
    at_json, at_html = accept.find("json"), accept.find("text/html")
    if at_json >= 0:
        return at_html < 0 or at_json < at_html
    return at_html < 0 and _is_json(event)
