"""One-time EventBridge Scheduler schedules, as the CRM keeps them (a campaign's send time,
a deal's rotting moment): the Scheduler client made on first use (most requests of a
function never need it), a schedule put whether or not it exists yet, and deleted whether
or not it is still there (Scheduler deletes a fired one itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm_core.clients import client

# Scheduler retries a firing it could not deliver for a day, then sends it to the DLQ.
MAX_EVENT_AGE_SECONDS = 86_400
MAX_RETRY_ATTEMPTS = 185
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class FunctionTarget:
    """Where a family of schedules goes (its function's environment): their group, the
    function they invoke, the role Scheduler takes to invoke it, and the DLQ of firings it
    could not deliver."""

    group: str
    function_arn: str
    role_arn: str
    dlq_arn: str


def one_time_request(
    *,
    name: str,
    group: str,
    at: datetime,
    timezone: str,
    function_arn: str,
    role_arn: str,
    dlq_arn: str,
    payload: str,
    description: str,
) -> dict[str, Any]:
    """CreateSchedule's (and UpdateSchedule's: it replaces every field) parameters of a
    schedule firing once at `at` (whole seconds, wall time in `timezone`), invoking the
    function with `payload`, deleted once fired."""
    return {
        "Name": name,
        "GroupName": group,
        "ScheduleExpression": f"at({at.strftime(_AT_FORMAT)})",
        "ScheduleExpressionTimezone": timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Description": description[:512],
        "Target": {
            "Arn": function_arn,
            "RoleArn": role_arn,
            "Input": payload,
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
                "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
            },
            "DeadLetterConfig": {"Arn": dlq_arn},
        },
    }


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Schedules:
    def __init__(self, make_client: Callable[[], Any] = lambda: client("scheduler")) -> None:
        self._make_client = make_client
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def upsert(self, params: dict[str, Any]) -> None:
        """CreateSchedule, or UpdateSchedule (it replaces every field) when it exists."""
        try:
            self.client.create_schedule(**params)
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
            self.client.update_schedule(**params)

    def remove(self, name: str, group: str) -> bool:
        """Delete the schedule; False when there was none (never made, or fired)."""
        try:
            self.client.delete_schedule(Name=name, GroupName=group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True
