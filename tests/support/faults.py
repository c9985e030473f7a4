"""Faults at the AWS boundary, for tests of what survives a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Crashing:
    """A DynamoDB client whose process dies (a timeout, say) after `after` transactions."""

    def __init__(self, client: Any, after: int) -> None:
        self._client = client
        self._left = after

    def transact_write_items(self, **params: Any) -> Any:
        if self._left == 0:
            raise TimeoutError("Task timed out")
        self._left -= 1
        return self._client.transact_write_items(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Meddling:
    """A DynamoDB client before whose first transaction someone else changes the table (a
    person's edit, another request), as if it happened just between a read and a write."""

    def __init__(self, client: Any, meddle: Callable[[], None]) -> None:
        self._client = client
        self._meddle: Callable[[], None] | None = meddle

    def transact_write_items(self, **params: Any) -> Any:
        if self._meddle is not None:
            meddle, self._meddle = self._meddle, None
            meddle()
        return self._client.transact_write_items(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
