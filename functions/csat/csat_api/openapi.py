"""The satisfaction routes' part of the API's OpenAPI document (scripts/generate_openapi.py):
the function has no resolver to describe it."""

from __future__ import annotations

from typing import Any

from crm_core import public_pages
from crm_core.cases import csat_tokens
from csat_api.request import MAX_BODY_BYTES

_refusal = public_pages.refusal_response


_TOKEN_PARAMETER = {
    "name": "token",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "maxLength": csat_tokens.MAX_TOKEN_CHARS},
    "description": "The signed token of the solved case email's satisfaction link.",
}
_SCORE = {"type": "integer", "minimum": 1, "maximum": 5}
_COMMENT = {"type": "string", "minLength": 1, "maxLength": 2000}
_CASE = {
    "type": "object",
    "required": ["subject"],
    "properties": {"subject": {"type": "string"}},
}
_STATE = {
    "type": "object",
    "required": ["case", "rated"],
    "properties": {
        "case": _CASE,
        "rated": {"type": "boolean"},
        "score": {**_SCORE, "description": "The rating recorded, when the case is rated."},
    },
}
_COMMON = {
    "400": _refusal("The link is not valid (altered, forged, another tenant's, or expired)"),
    "404": _refusal("The case no longer exists"),
    "429": _refusal("Busy; retry later"),
}
OPENAPI_PATHS: dict[str, Any] = {
    "/csat": {
        "get": {
            "summary": "A solved case's satisfaction page (no Cognito token; records nothing)",
            "description": (
                "An HTML page naming the case's subject, with a form (a score from 1 to 5 and "
                "an optional comment) that POSTs to the same link; JSON to `Accept: "
                "application/json`. Following the link never records a rating: mail scanners "
                "follow links. A case rated before shows its score."
            ),
            "operationId": "csat_page",
            "security": [],
            "parameters": [_TOKEN_PARAMETER],
            "responses": {
                "200": {
                    "description": "The page",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {"schema": _STATE},
                    },
                },
                **_COMMON,
                "409": _refusal("The case was never solved"),
            },
        },
        "post": {
            "summary": "Rate a solved case, once (no Cognito token)",
            "description": (
                "The page's form (`score=4&comment=...`, form-encoded) or JSON "
                f'(`{{"score": 4, "comment": "..."}}`), at most {MAX_BODY_BYTES} bytes. The '
                "case's `satisfaction` is recorded with CaseRated, in one transaction. A case "
                "is rated once: the page of a second rating says it was rated before, with "
                "the first score, which stays; a JSON client gets 409 with that `score`."
            ),
            "operationId": "csat_rate",
            "security": [],
            "parameters": [_TOKEN_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["score"],
                            "properties": {
                                "score": {"type": "string", "enum": ["1", "2", "3", "4", "5"]},
                                "comment": {"type": "string", "maxLength": 2000},
                            },
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["score"],
                            "additionalProperties": False,
                            "properties": {"score": _SCORE, "comment": _COMMENT},
                        }
                    },
                },
            },
            "responses": {
                "200": {
                    "description": (
                        "Recorded (or, as a page, the case was rated before: its first score)"
                    ),
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {
                            "schema": {
                                **_STATE,
                                "required": ["case", "rated", "score"],
                            }
                        },
                    },
                },
                **_COMMON,
                "409": _refusal(
                    "The case was never solved; or, to a JSON client, it was rated before: the "
                    "problem's `score` is the first rating's, which stays"
                ),
                "413": _refusal(f"The body is larger than {MAX_BODY_BYTES} bytes"),
                "422": _refusal("The score is missing or not 1 to 5, or the comment is too long"),
            },
        },
    }
}
