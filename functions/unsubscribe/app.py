"""The unsubscribe function: `GET` and `POST /unsubscribe?token=...`, with no authorizer.

The signed token of the link (crm_core/campaigns/unsubscribe_tokens.py) is the only
authority: it names the tenant and the contact, and nothing else in the request does.

- `GET` answers a small page that names the (masked) address and has one button. It never
  changes anything: mail scanners and link previews follow links.
- `POST` unsubscribes at once: RFC 8058's one-click (the mailbox provider's button, body
  `List-Unsubscribe=One-Click`) or the page's button (the same field and `origin=page`).
  Any other body is accepted too, since the token decides. The contact's consent becomes
  `unsubscribed` with ContactUpdated and ContactUnsubscribed in one transaction
  (crm_core/campaigns/unsubscribing.py); a contact already unsubscribed, deleted, or a test
  send's link answers the same 200 and writes nothing.

A bad, altered or expired token is a 400 that says only that the link is not valid. Pages
are self-contained HTML (no script, no external resource) under a strict
Content-Security-Policy; a client that asks for JSON gets JSON (problem+json for errors).
A plain handler, as the lead webhook is: two routes need no resolver.
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

import base64  # noqa: E402
import binascii  # noqa: E402
import html  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qs, quote  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.campaigns import unsubscribe_tokens  # noqa: E402
from crm_core.campaigns.unsubscribe_tokens import InvalidToken, TokenClaims, TokenKey  # noqa: E402
from crm_core.campaigns.unsubscribing import (  # noqa: E402
    TEST_CONTACT_ID,
    Method,
    Outcome,
    Unsubscriber,
    find_contact,
    is_unsubscribed,
)
from crm_core.clients import client  # noqa: E402
from crm_core.errors import CrmError  # noqa: E402
from crm_core.events.envelope import Origin  # noqa: E402
from crm_core.runtime import function_runtime  # noqa: E402

logger, tracer, metrics, settings, table = function_runtime()
token_key = TokenKey(lambda: client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"])
unsubscriber = Unsubscriber(table)

gc.enable()
gc.freeze()

PRODUCER = "unsubscribe"
MAX_BODY_BYTES = 8 * 1024
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
PAGE_FIELD, PAGE_VALUE = "origin", "page"
INVALID_LINK = "This unsubscribe link is not valid. Use the link of a more recent email."
HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_PROBLEMS = "https://crm.dev/problems"


class _Refusal(Exception):
    def __init__(self, status: int, title: str, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.slug, self.detail = status, title, slug, detail


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    as_json = _wants_json(headers.get("accept", ""))
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET"))
    try:
        if method.upper() not in ("GET", "POST"):
            raise _Refusal(405, "Method not allowed", "method-not-allowed", "use GET or POST")
        # Before the token: an oversized body is refused without a KMS call or a read.
        body = _form(event) if method.upper() == "POST" else None
        token, claims = _claims(event)
        logger.append_keys(tenant_id=claims.tenant_id, campaign_id=claims.campaign_id)
        if body is None:
            return _page(token, claims, as_json)
        return _unsubscribe(claims, body, as_json, _request_id(event))
    except _Refusal as refused:
        logger.info("unsubscribe refused", extra={"status": refused.status})
        metrics.add_metric(name="UnsubscribeRefused", unit=MetricUnit.Count, value=1)
        return _error(refused.status, refused.title, refused.slug, refused.detail, as_json)
    except CrmError as error:  # a busy table (429): try again
        logger.warning("unsubscribe not done", extra={"status": error.status})
        return _error(error.status, error.title, error.type_slug, error.detail, as_json)
    except Exception:
        # A 5xx tells a mailbox provider to retry; a person sees "try again".
        logger.exception("unsubscribe failed")
        metrics.add_metric(name="UnsubscribeFailed", unit=MetricUnit.Count, value=1)
        return _error(
            500, "Internal error", "internal", "Nothing was changed; please try again.", as_json
        )


# The request ------------------------------------------------------------------------------
def _claims(event: dict[str, Any]) -> tuple[str, TokenClaims]:
    """The link's token and what it says (never logged: it is the link's authority)."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise _Refusal(400, "Bad request", "bad-request", INVALID_LINK)
    try:
        return token, unsubscribe_tokens.verify(token_key.secret, token)
    except InvalidToken:
        # Never which part failed (forged, altered, another key's, expired).
        raise _Refusal(400, "Bad request", "bad-request", INVALID_LINK) from None


def _form(event: dict[str, Any]) -> dict[str, list[str]]:
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


def _too_large() -> _Refusal:
    return _Refusal(
        413, "Payload too large", "payload-too-large", f"the body is over {MAX_BODY_BYTES} bytes"
    )


def _method(form: dict[str, list[str]]) -> Method:
    """RFC 8058's POST carries exactly `List-Unsubscribe=One-Click`; our page adds its
    own field."""
    return Method.ONE_CLICK if form == {ONE_CLICK_FIELD: [ONE_CLICK_VALUE]} else Method.PAGE


def _request_id(event: dict[str, Any]) -> str | None:
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id else None


def _wants_json(accept: str) -> bool:
    """JSON when the client asks for it before (or without) HTML."""
    accept = accept.lower()
    at_json = accept.find("json")
    if at_json < 0:
        return False
    at_html = accept.find("text/html")
    return at_html < 0 or at_json < at_html


# GET: the page ---------------------------------------------------------------------------
def _page(token: str, claims: TokenClaims, as_json: bool) -> dict[str, Any]:
    contact = None
    if claims.contact_id != TEST_CONTACT_ID:
        contact = find_contact(table, claims.tenant_id, claims.contact_id, consistent=False)
    address = mask(contact.get("email")) if contact else None
    already = contact is not None and is_unsubscribed(contact)
    metrics.add_metric(name="UnsubscribePageShown", unit=MetricUnit.Count, value=1)
    if as_json:
        return _json(200, {"email": address, "unsubscribed": already})
    who = f"<strong>{html.escape(address)}</strong>" if address else "your address"
    if already:
        return _html(
            200,
            "Unsubscribed",
            f"<h1>You are unsubscribed</h1><p>{who} gets no more of these emails.</p>",
        )
    # The button posts to this same link: the token stays the request's authority.
    action = html.escape(f"?token={quote(token, safe='.-_')}")
    form = (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">'
        f'<input type="hidden" name="{PAGE_FIELD}" value="{PAGE_VALUE}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _html(
        200,
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>Stop sending these emails to {who}?</p>{form}",
    )


def mask(email: Any) -> str | None:
    """a***@example.com: enough to recognize one's address, not to learn someone's."""
    if not isinstance(email, str) or "@" not in email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


# POST: unsubscribe -----------------------------------------------------------------------
def _unsubscribe(
    claims: TokenClaims, form: dict[str, list[str]], as_json: bool, request_id: str | None
) -> dict[str, Any]:
    method = _method(form)
    done = unsubscriber.unsubscribe(
        claims.tenant_id,
        claims.contact_id,
        claims.campaign_id,
        method,
        Origin.system(PRODUCER, request_id),
    )
    logger.info(
        "unsubscribe",
        extra={
            "outcome": done.outcome.value,
            "method": method.value,
            "contact_id": done.contact_id,
            "event_id": done.event_id,
        },
    )
    if done.outcome == Outcome.UNSUBSCRIBED:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    if as_json:
        return _json(200, {"unsubscribed": True, "email": mask(done.email)})
    address = mask(done.email)
    who = f"<strong>{html.escape(address)}</strong>" if address else "Your address"
    return _html(
        200,
        "Unsubscribed",
        f"<h1>You are unsubscribed</h1><p>{who} will get no more of these emails.</p>",
    )


# Responses -------------------------------------------------------------------------------
_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:32rem;"
    "margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}"
    "h1{font-size:1.4rem}button{font-size:1rem;padding:.6rem 1.4rem;border:0;"
    "border-radius:.3rem;background:#b3261e;color:#fff;cursor:pointer}"
)


def _html(status: int, title: str, content: str) -> dict[str, Any]:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{content}</body></html>"
    )
    return {
        "statusCode": status,
        "headers": dict(HTML_HEADERS),
        "body": document,
        "isBase64Encoded": False,
    }


def _json(status: int, body: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": media, "Cache-Control": "no-store"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _error(status: int, title: str, slug: str, detail: str, as_json: bool) -> dict[str, Any]:
    if as_json:
        problem = {"type": f"{_PROBLEMS}/{slug}", "title": title, "status": status}
        return _json(status, {**problem, "detail": detail}, "application/problem+json")
    return _html(status, title, f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>")


# These routes' part of the API's OpenAPI document (scripts/generate_openapi.py): the
# function has no resolver to describe it.
def _refusal(description: str) -> dict[str, Any]:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        "description": description,
        "content": {
            "application/problem+json": problem,
            "text/html": {"schema": {"type": "string"}},
        },
    }


_TOKEN_PARAMETER = {
    "name": "token",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "maxLength": unsubscribe_tokens.MAX_TOKEN_CHARS},
    "description": "The signed token of the email's unsubscribe link.",
}
_MASKED = {"type": ["string", "null"], "description": "The address, masked: a***@example.com"}
OPENAPI_PATHS: dict[str, Any] = {
    "/unsubscribe": {
        "get": {
            "summary": "An email's unsubscribe page (no Cognito token; changes nothing)",
            "description": (
                "An HTML page naming the masked address, with a button that POSTs to the same "
                "link; JSON to `Accept: application/json`. Following the link never "
                "unsubscribes: mail scanners follow links."
            ),
            "operationId": "unsubscribe_page",
            "security": [],
            "parameters": [_TOKEN_PARAMETER],
            "responses": {
                "200": {
                    "description": "The page",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["email", "unsubscribed"],
                                "properties": {
                                    "email": _MASKED,
                                    "unsubscribed": {"type": "boolean"},
                                },
                            }
                        },
                    },
                },
                "400": _refusal("The link is not valid (altered, forged or expired)"),
                "429": _refusal("Busy; retry later"),
            },
        },
        "post": {
            "summary": "Unsubscribe (RFC 8058 one-click, or the page's button; no Cognito token)",
            "description": (
                "Body `List-Unsubscribe=One-Click` (form-encoded; any other body is accepted "
                f"too, at most {MAX_BODY_BYTES} bytes). The contact's email consent becomes "
                "`unsubscribed` at once, with ContactUnsubscribed; a contact already "
                "unsubscribed, or gone, answers the same 200."
            ),
            "operationId": "unsubscribe",
            "security": [],
            "parameters": [_TOKEN_PARAMETER],
            "requestBody": {
                "required": False,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Unsubscribed",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["unsubscribed", "email"],
                                "properties": {
                                    "unsubscribed": {"const": True},
                                    "email": _MASKED,
                                },
                            }
                        },
                    },
                },
                "400": _refusal("The link is not valid (altered, forged or expired)"),
                "413": _refusal(f"The body is larger than {MAX_BODY_BYTES} bytes"),
                "429": _refusal("Busy; retry later"),
            },
        },
    }
}
