"""The pages of the links people follow from an email (unsubscribe, satisfaction): one
self-contained HTML document (no script, no external resource) under a strict
Content-Security-Policy, or JSON to a client that asks for it (problem+json for errors,
crm_core/problems.py). Each page set adds its own style to `BASE_STYLE`."""

from __future__ import annotations

import html
import json
from typing import Any

from crm_core.problems import lambda_reply, problem_reply

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
BASE_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:32rem;"
    "margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}"
    "h1{font-size:1.4rem}"
)
_NO_STORE = {"Cache-Control": "no-store"}


def page(status: int, title: str, content: str, style: str = BASE_STYLE) -> dict[str, Any]:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body>{content}</body></html>"
    )
    return lambda_reply(status, document, "text/html; charset=utf-8", HTML_HEADERS)


def json_reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return lambda_reply(status, json.dumps(body), "application/json", _NO_STORE)


def error(
    status: int,
    title: str,
    slug: str,
    detail: str,
    as_json: bool,
    style: str = BASE_STYLE,
    **extra: Any,
) -> dict[str, Any]:
    """A refusal: problem+json (with `extra` members) to a JSON client, else a page."""
    if as_json:
        return problem_reply(status, title, detail, slug, _NO_STORE, **extra)
    content = f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
    return page(status, title, content, style)


def refusal_response(description: str) -> dict[str, Any]:
    """An OpenAPI response of a refusal: problem+json, or the page saying it."""
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
