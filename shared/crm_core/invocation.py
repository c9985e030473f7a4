"""The Lambda invocation in hand, for work that can outlast it (a dispatch, a send batch, a
re-score job, the overdue check): its id and the time it has left.

    invocation = Invocation(default_ms=60_000)
    def handler(event, context):
        invocation.begin(context)
        ...  # work that asks invocation.time_left_ms() and raises OutOfTime

Without a Lambda context (a test calling the work directly) the time left is `default_ms`.
"""

from __future__ import annotations

import uuid
from typing import Any


class OutOfTime(RuntimeError):
    """Too little of the invocation is left to go on: the work stops where what is written
    lets a retry (or the message's redelivery) go on from."""


class Invocation:
    def __init__(self, default_ms: int) -> None:
        self.default_ms = default_ms
        self.context: Any = None

    def begin(self, context: Any) -> None:
        self.context = context

    def time_left_ms(self) -> int:
        if self.context is None:
            return self.default_ms
        return int(self.context.get_remaining_time_in_millis())

    def request_id(self) -> str:
        """The request id, which Lambda keeps across the retries of an asynchronous
        invocation; a fresh one without a context."""
        return str(getattr(self.context, "aws_request_id", None) or uuid.uuid4())
