"""One-time EventBridge Scheduler schedules, as the CRM keeps them (a campaign's send time,
a deal's rotting moment): the Scheduler client made on first use (most requests of a
function never need it), a schedule put whether or not it exists yet, and deleted whether
or not it is still there (Scheduler deletes a fired one itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from crm_core.clients import client


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
