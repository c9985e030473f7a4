"""The outcome of one local Lambda invocation, shared by the runner and its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InvokeResult:
    """What Lambda's Invoke API would report.

    `error` is set when the function failed (`{"errorType", "errorMessage", "stackTrace"}` as
    Lambda reports it; `errorType` "Sandbox.Timedout" when it ran out of time); `payload` is
    the handler's return value otherwise.
    """

    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.get("errorType") == "Sandbox.Timedout"
