"""The webhook signature: `Crm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

The HMAC is keyed with the source's secret (its UTF-8 bytes) over `"<t>.<raw body>"`. A
header may carry several `v1` values (a sender signing with both secrets while it rolls
over); one match is enough. Other schemes (`v0=...`) are ignored, so that a later scheme can
be added without breaking senders. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

HEADER = "crm-signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300
_MAX_HEADER_CHARS = 1024
_TIMESTAMP = re.compile(r"^\d{1,12}$")
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(Exception):
    """The delivery is not signed as it must be. `public` is what the sender is told."""

    def __init__(self, public: str) -> None:
        super().__init__(public)
        self.public = public


MALFORMED = "the Crm-Signature header is missing or malformed: send t=<unix seconds>,v1=<hex>"
STALE = f"the signature's timestamp is more than {TOLERANCE_SECONDS} s from the current time"
# One answer for an unknown or disabled source, a wrong secret and a changed body, so that
# nobody can learn which source ids exist or which part failed.
MISMATCH = "the signature does not match this source"


@dataclass(frozen=True)
class SignedHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse(header: str | None) -> SignedHeader:
    if not header or len(header) > _MAX_HEADER_CHARS:
        raise SignatureError(MALFORMED)
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(MALFORMED)
        name, value = name.strip(), value.strip()
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.match(value):
                raise SignatureError(MALFORMED)
            timestamp = value
        elif name == SCHEME:
            if not _HEX_SHA256.match(value.lower()):
                raise SignatureError(MALFORMED)
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise SignatureError(MALFORMED)
    return SignedHeader(int(timestamp), tuple(signatures[:5]))


def check_time(signed: SignedHeader, now: float) -> None:
    """Too old or too far ahead (a replay, or a sender's clock far off): refused."""
    if abs(now - signed.timestamp) > TOLERANCE_SECONDS:
        raise SignatureError(STALE)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The header a sender sends (`crm webhook send`, tests)."""
    return f"t={timestamp},{SCHEME}={sign(secret, timestamp, body)}"


def matches(signed: SignedHeader, secrets: list[str], body: bytes) -> bool:
    """Whether any signature was made with any of the secrets. Every pair is compared, in
    constant time, so the time taken does not tell which secret or signature matched."""
    found = False
    for secret in secrets:
        expected = sign(secret, signed.timestamp, body)
        for candidate in signed.signatures:
            found |= hmac.compare_digest(expected, candidate)
    return found


def delivery_digest(signed: SignedHeader, body: bytes) -> str:
    """What identifies one delivery: the same body signed at the same second."""
    return hashlib.sha256(f"{signed.timestamp}.".encode() + body).hexdigest()
