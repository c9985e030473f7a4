"""The unsubscribe routes' part of the API's OpenAPI document (scripts/generate_openapi.py):
the function has no resolver to describe it."""

from __future__ import annotations

from typing import Any

from crm_core import public_pages
from crm_core.campaigns import unsubscribe_tokens
from unsubscribe_api.request import MAX_BODY_BYTES

_refusal = public_pages.refusal_response


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
