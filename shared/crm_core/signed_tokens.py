"""Signed link tokens: `<version>.<payload>.<mac>`, the payload a base64url JSON object and
the MAC an HMAC-SHA256 of `<version>.<payload>` (the unsubscribe and satisfaction links).

The secret never leaves KMS in a form we store: each process derives it once from the
stage's HMAC key (`GenerateMac` of a label naming the use, `TokenKey`), so the function that
signs and the one that verifies agree without a shared secret in their configuration, and
no use's token is valid for another. Rotating the KMS key is rotating every secret: links
already sent then stop working, so do not (decision 46).

`sign` and `opened` do the format and the MAC; each kind of token checks its own claims and
expiry (campaigns/unsubscribe_tokens.py, cases/csat_tokens.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any


class InvalidToken(ValueError):
    """Not a token we issued, altered, or expired."""


class TokenKey:
    """The HMAC secret of one use, derived from the KMS key on first use."""

    def __init__(self, kms: Callable[[], Any], key_id: str, label: bytes) -> None:
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


def sign(secret: bytes, version: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signed = f"{version}.{body}"
    return f"{signed}.{_mac(secret, signed)}"


def opened(secret: bytes, version: str, token: str, max_chars: int) -> dict[str, Any]:
    """The payload of a token of `version` whose MAC is right; InvalidToken otherwise,
    never saying which check failed."""
    if not token or len(token) > max_chars or not token.isascii():
        raise InvalidToken("the link is not valid")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != version:
        raise InvalidToken("the link is not valid")
    if not hmac.compare_digest(_mac(secret, f"{parts[0]}.{parts[1]}"), parts[2]):
        raise InvalidToken("the link is not valid")
    try:
        payload = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidToken("the link is not valid") from None
    if not isinstance(payload, dict):
        raise InvalidToken("the link is not valid")
    return payload
