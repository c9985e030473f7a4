"""The unsubscribe pages: self-contained HTML (no script, no external resource) under a
strict Content-Security-Policy, or JSON to a client that asks for it (problem+json for
errors, crm_core/problems.py)."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from crm_core.problems import lambda_reply, problem_reply
from unsubscribe_api.request import ONE_CLICK_FIELD, ONE_CLICK_VALUE, PAGE_FIELD, PAGE_VALUE

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:32rem;"
    "margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}"
    "h1{font-size:1.4rem}button{font-size:1rem;padding:.6rem 1.4rem;border:0;"
    "border-radius:.3rem;background:#b3261e;color:#fff;cursor:pointer}"
)


def mask(email: Any) -> str | None:
    """a***@example.com: enough to recognize one's address, not to learn someone's."""
    if not isinstance(email, str) or "@" not in email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def confirm_page(token: str, address: str | None) -> dict[str, Any]:
    """One button that posts to this same link: the token stays the request's authority."""
    action = html.escape(f"?token={quote(token, safe='.-_')}")
    form = (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">'
        f'<input type="hidden" name="{PAGE_FIELD}" value="{PAGE_VALUE}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return page(
        200,
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>Stop sending these emails to {_who(address)}?</p>{form}",
    )


def unsubscribed_page(address: str | None, *, just_now: bool) -> dict[str, Any]:
    """After the POST (`just_now`), or the page of an address unsubscribed before."""
    if just_now:
        said = f"{_who(address, 'Your address')} will get no more of these emails."
    else:
        said = f"{_who(address)} gets no more of these emails."
    return page(200, "Unsubscribed", f"<h1>You are unsubscribed</h1><p>{said}</p>")


def _who(address: str | None, otherwise: str = "your address") -> str:
    return f"<strong>{html.escape(address)}</strong>" if address else otherwise


def page(status: int, title: str, content: str) -> dict[str, Any]:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{content}</body></html>"
    )
    return lambda_reply(status, document, "text/html; charset=utf-8", HTML_HEADERS)


def json_reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return lambda_reply(status, json.dumps(body), "application/json", {"Cache-Control": "no-store"})


def error(status: int, title: str, slug: str, detail: str, as_json: bool) -> dict[str, Any]:
    if as_json:
        return problem_reply(status, title, detail, slug, {"Cache-Control": "no-store"})
    return page(status, title, f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>")
