"""Unsubscribe tokens: signed, bound to one tenant and contact, valid for a year.

    v1.<payload>.<mac>      payload = base64url(JSON {"t": tenant, "c": contact,
                                      "m": campaign or "", "i": issued (unix seconds)})
                            mac     = base64url(HMAC-SHA256(secret, "v1." + payload))

The format, the MAC and the secret (a MAC of the stage's KMS key under this use's label,
one KMS call per process) are crm_core/signed_tokens.py's.

A token cannot be moved to another tenant or contact (they are inside the MAC), and a
forged or altered one fails `verify`. Tokens last `VALID_DAYS` (RFC 8058 and the mailbox
providers ask for at least 60 days).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_core import signed_tokens
from crm_core.signed_tokens import InvalidToken

__all__ = ["InvalidToken", "TokenClaims", "TokenKey", "issue", "unsubscribe_url", "verify"]

VERSION = "v1"
VALID_DAYS = 365
MAX_TOKEN_CHARS = 512
_LABEL = b"crm unsubscribe token v1"


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    contact_id: str
    campaign_id: str | None
    issued_at: int


class TokenKey(signed_tokens.TokenKey):
    """The unsubscribe links' secret (another use passes its own label)."""

    def __init__(self, kms: Callable[[], Any], key_id: str, label: bytes = _LABEL) -> None:
        super().__init__(kms, key_id, label)


def issue(
    secret: bytes,
    tenant_id: str,
    contact_id: str,
    campaign_id: str | None,
    now: float | None = None,
) -> str:
    payload = {
        "t": tenant_id,
        "c": contact_id,
        "m": campaign_id or "",
        "i": int(time.time() if now is None else now),
    }
    return signed_tokens.sign(secret, VERSION, payload)


def verify(secret: bytes, token: str, now: float | None = None) -> TokenClaims:
    payload = signed_tokens.opened(secret, VERSION, token, MAX_TOKEN_CHARS)
    if not (
        all(isinstance(payload.get(k), str) for k in ("t", "c", "m"))
        and isinstance(payload.get("i"), int)
        and payload["t"]
        and payload["c"]
    ):
        raise InvalidToken("the link is not valid")
    moment = time.time() if now is None else now
    if moment - payload["i"] > VALID_DAYS * 86_400:
        raise InvalidToken("the link has expired")
    return TokenClaims(payload["t"], payload["c"], payload["m"] or None, payload["i"])


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url}?token={token}"
