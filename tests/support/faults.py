"""Faults at the AWS boundary, for tests of what survives a crash."""

from __future__ import annotations

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
