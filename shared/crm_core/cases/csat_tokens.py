"""Satisfaction links: signed, bound to one tenant and case, valid for 30 days.

    s1.<payload>.<mac>      payload = base64url(JSON {"t": tenant, "c": case,
                                      "i": issued (unix seconds)})
                            mac     = base64url(HMAC-SHA256(secret, "s1." + payload))

The format, the MAC and the secret are crm_core/signed_tokens.py's, the secret under a
label of its own (`LABEL`): an unsubscribe token is never a valid satisfaction token, nor
the reverse. The token is the link's only authority:
the tenant and the case are inside the MAC, so it cannot be moved to another tenant's case,
and it expires `VALID_DAYS` after the case was solved (a reopened and solved-again case
mails a new one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from crm_core import signed_tokens
from crm_core.signed_tokens import InvalidToken

__all__ = ["LABEL", "CsatClaims", "InvalidToken", "csat_url", "issue", "verify"]

VERSION = "s1"
VALID_DAYS = 30
MAX_TOKEN_CHARS = 512
LABEL = b"crm case satisfaction token v1"


@dataclass(frozen=True)
class CsatClaims:
    tenant_id: str
    case_id: str
    issued_at: int


def issue(secret: bytes, tenant_id: str, case_id: str, now: float | None = None) -> str:
    payload = {"t": tenant_id, "c": case_id, "i": int(time.time() if now is None else now)}
    return signed_tokens.sign(secret, VERSION, payload)


def verify(secret: bytes, token: str, now: float | None = None) -> CsatClaims:
    """The token's claims; InvalidToken (never saying which check failed) otherwise."""
    payload = signed_tokens.opened(secret, VERSION, token, MAX_TOKEN_CHARS)
    if not (
        isinstance(payload.get("t"), str)
        and isinstance(payload.get("c"), str)
        and isinstance(payload.get("i"), int)
        and payload["t"]
        and payload["c"]
    ):
        raise InvalidToken("the link is not valid")
    moment = time.time() if now is None else now
    if moment - payload["i"] > VALID_DAYS * 86_400:
        raise InvalidToken("the link has expired")
    return CsatClaims(payload["t"], payload["c"], payload["i"])


def csat_url(base_url: str, token: str) -> str:
    return f"{base_url}?token={token}"
