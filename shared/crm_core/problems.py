"""Problem details (RFC 9457): the one shape of every error the CRM answers, from the API's
resolver (crm_core/http.py) and from the plain handlers (the lead webhook, unsubscribe) alike.

Each problem's `type` is a URI under PROBLEM_TYPES named by a slug (`not-found`,
`validation`...), the one place those URIs are written.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPES = "https://crm.dev/problems/"


def type_uri(slug: str) -> str:
    return PROBLEM_TYPES + slug


def problem_body(status: int, title: str, detail: str, slug: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_uri(slug), "title": title, "status": status, "detail": detail, **extra}


def lambda_reply(
    status: int, body: str, media: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A plain handler's answer to API Gateway (payload format 2.0)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": media, **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def problem_reply(
    status: int,
    title: str,
    detail: str,
    slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A plain handler's problem+json answer (`extra`: members of its own)."""
    body = json.dumps(problem_body(status, title, detail, slug, **extra), default=str)
    return lambda_reply(status, body, PROBLEM_JSON, headers)
