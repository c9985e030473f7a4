"""Unsubscribe tokens: signed, bound to one tenant and contact, valid for a year.

    v1.<payload>.<mac>      payload = base64url(JSON {"t": tenant, "c": contact,
                                      "m": campaign or "", "i": issued (unix seconds)})
                            mac     = base64url(HMAC-SHA256(secret, "v1." + payload))

The secret never leaves KMS in a form we store: each process derives it once from the
stage's HMAC key (`GenerateMac` of a fixed label), so the sender and the unsubscribe
function agree without a shared secret in their configuration, and one KMS call serves a
process's whole life. Rotating the KMS key is rotating the secret: links already sent then
stop working, so do not (decision 46).

A token cannot be moved to another tenant or contact (they are inside the MAC), and a
forged or altered one fails `verify`. Tokens last `VALID_DAYS` (RFC 8058 and the mailbox
providers ask for at least 60 days).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VERSION = "v1"
VALID_DAYS = 365
MAX_TOKEN_CHARS = 512
_LABEL = b"crm unsubscribe token v1"


class InvalidToken(ValueError):
    """Not a token we issued, altered, or expired."""


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    contact_id: str
    campaign_id: str | None
    issued_at: int


class TokenKey:
    """The HMAC secret, derived from the KMS key on first use."""

    def __init__(self, kms: Callable[[], Any], key_id: str, label: bytes = _LABEL) -> None:
        # Each use of the key (unsubscribe links, satisfaction links, reply addresses) has
        # a label of its own, so no use's MAC is valid for another.
        self._make_kms = kms
        self.key_id = key_id
        self.label = label
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            response = self._make_kms().generate_mac(
                KeyId=self.key_id, Message=self.label, MacAlgorithm="HMAC_SHA_256"
            )
            self._secret = bytes(response["Mac"])
        return self._secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


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
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signed = f"{VERSION}.{body}"
    return f"{signed}.{_mac(secret, signed)}"


def verify(secret: bytes, token: str, now: float | None = None) -> TokenClaims:
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
        and all(isinstance(payload.get(k), str) for k in ("t", "c", "m"))
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
