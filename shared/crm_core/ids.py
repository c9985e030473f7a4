"""ULIDs: sortable by creation time, 26 Crockford base32 characters, no dependency."""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ULID_RE = re.compile(ULID_PATTERN)


def new_ulid(now_ms: int | None = None) -> str:
    """A new ULID: 48 bits of milliseconds, then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))


ULID_TIME_CHARS = 10
ULID_MAX_MS = 2**48 - 1


def ulid_time_prefix(ms: int) -> str:
    """The first 10 characters of every ULID made at millisecond `ms` (a key range bound)."""
    chars = []
    for _ in range(ULID_TIME_CHARS):
        chars.append(_ALPHABET[ms & 31])
        ms >>= 5
    return "".join(reversed(chars))


def ulid_ms(value: str) -> int:
    """The millisecond a ULID was made at (or, for activities, the time it names)."""
    ms = 0
    for char in value[:ULID_TIME_CHARS]:
        ms = ms * 32 + _ALPHABET.index(char)
    return ms
