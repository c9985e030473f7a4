"""Opaque list cursors.

A cursor is the Query's LastEvaluatedKey, base64url-encoded with the list it belongs to.
On the way back in it must name the same list and its partition key must be the very
partition this Query reads, so a cursor forged or taken from another tenant or another
list is a 400, and can never steer a Query outside the caller's partition. Its keys must
also be keys DynamoDB takes (Unicode text within its key sizes): moto takes more, and a
key DynamoDB refuses would be its ValidationException, a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from crm_core import strict_json
from crm_core.errors import BadRequest
from crm_core.keys import INDEX_KEYS, tenant_prefix

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_MAX_CURSOR_CHARS = 2048
# DynamoDB's key sizes, in UTF-8 bytes (of a table's keys and of an index's alike).
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


@dataclass(frozen=True)
class ListQuery:
    """One list: which index, which partition. The cursor is bound to both."""

    name: str
    partition: str
    index: str | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        pk, sk = INDEX_KEYS[self.index]
        names = (pk, sk)
        return names if self.index is None else (*names, "PK", "SK")

    def encode(self, last_key: dict[str, Any] | None) -> str | None:
        if not last_key:
            return None
        plain = {k: v["S"] for k, v in last_key.items()}
        payload = json.dumps({"l": self.name, "k": plain}, separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    def decode(self, cursor: str | None) -> dict[str, Any] | None:
        """The ExclusiveStartKey for this list, or BadRequest."""
        if cursor is None:
            return None
        if not cursor or len(cursor) > _MAX_CURSOR_CHARS:
            raise BadRequest("the cursor is not valid for this list")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            # Strict: Python's json gives up on deep nesting with RecursionError.
            payload = strict_json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError and JsonRefused too
            raise BadRequest("the cursor is not valid for this list") from exc
        if not isinstance(payload, dict) or payload.get("l") != self.name:
            raise BadRequest("the cursor is not valid for this list")
        key = payload.get("k")
        if (
            not isinstance(key, dict)
            or set(key) != set(self.key_names)
            or not all(isinstance(v, str) and v for v in key.values())
            or key[INDEX_KEYS[self.index][0]] != self.partition
            or not key["PK"].startswith(tenant_prefix(self.tenant_id))
            or not all(_fits(name, value) for name, value in key.items())
        ):
            raise BadRequest("the cursor is not valid for this list")
        return {k: {"S": v} for k, v in key.items()}

    @property
    def tenant_id(self) -> str:
        # Every partition is "T#<tenant>#...": the tenant is the second segment.
        return self.partition.split("#", 2)[1]


_PARTITION_KEYS = frozenset(pk for pk, _ in INDEX_KEYS.values())


def _fits(name: str, value: str) -> bool:
    """Whether DynamoDB takes `value` as key `name`: UTF-8 text (a JSON escape can spell a
    lone surrogate, which is not) within the key's size."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return size <= (MAX_PARTITION_KEY_BYTES if name in _PARTITION_KEYS else MAX_SORT_KEY_BYTES)
