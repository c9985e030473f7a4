"""Count the AWS API calls an operation makes, through botocore's event hooks.

A Scan anywhere fails the test at once: no request path may scan the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ScanForbidden(AssertionError):
    pass


class CallLog:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name == "Scan":
            raise ScanForbidden("a Scan was issued; every read must be a key or index Query")
        self.calls.append(model.name)

    @property
    def count(self) -> int:
        return len(self.calls)

    @property
    def by_operation(self) -> Counter[str]:
        return Counter(self.calls)


@contextmanager
def count_calls(*clients: Any) -> Iterator[CallLog]:
    log = CallLog()
    for client in clients:
        client.meta.events.register("before-call", log, unique_id="crm-call-log")
    try:
        yield log
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", unique_id="crm-call-log")
