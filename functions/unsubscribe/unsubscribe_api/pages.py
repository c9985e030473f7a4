"""The unsubscribe pages: self-contained HTML (no script, no external resource) under a
strict Content-Security-Policy, or JSON to a client that asks for it (problem+json for
errors, crm_core/problems.py)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from crm_core import public_pages
from unsubscribe_api.request import ONE_CLICK_FIELD, ONE_CLICK_VALUE, PAGE_FIELD, PAGE_VALUE

_STYLE = public_pages.BASE_STYLE + (
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;"
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
    return public_pages.page(status, title, content, _STYLE)


json_reply = public_pages.json_reply


def error(
    status: int, title: str, slug: str, detail: str, as_json: bool, **extra: Any
) -> dict[str, Any]:
    return public_pages.error(status, title, slug, detail, as_json, _STYLE, **extra)
