"""Satisfaction links: signed, bound to one tenant and case, valid for 30 days.

    s1.<payload>.<mac>      payload = base64url(JSON {"t": tenant, "c": case,
                                      "i": issued (unix seconds)})
                            mac     = base64url(HMAC-SHA256(secret, "s1." + payload))

The secret is derived, as the unsubscribe links' is (campaigns/unsubscribe_tokens.py), from
the stage's HMAC key in KMS, under a label of its own (`LABEL`): an unsubscribe token is
never a valid satisfaction token, nor the reverse. The token is the link's only authority:
the tenant and the case are inside the MAC, so it cannot be moved to another tenant's case,
and it expires `VALID_DAYS` after the case was solved (a reopened and solved-again case
mails a new one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

VERSION = "s1"
VALID_DAYS = 30
MAX_TOKEN_CHARS = 512
LABEL = b"crm case satisfaction token v1"


class InvalidToken(ValueError):
    """Not a token we issued, altered, or expired."""


@dataclass(frozen=True)
class CsatClaims:
    tenant_id: str
    case_id: str
    issued_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def issue(secret: bytes, tenant_id: str, case_id: str, now: float | None = None) -> str:
    payload = {"t": tenant_id, "c": case_id, "i": int(time.time() if now is None else now)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signed = f"{VERSION}.{body}"
    return f"{signed}.{_mac(secret, signed)}"


def verify(secret: bytes, token: str, now: float | None = None) -> CsatClaims:
    """The token's claims; InvalidToken (never saying which check failed) otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise InvalidToken("the link is not valid")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidToken("the link is not valid")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(secret, signed), parts[2]):
        raise InvalidToken("the link is not valid")
    try:
        payload = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidToken("the link is not valid") from None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("t"), str)
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
