"""A scheduled campaign's one-time EventBridge Scheduler schedule.

One schedule per campaign, `campaign-<campaign_id>` in the stage's group, firing once
`at(...)` the send time, in the time zone the user chose (Scheduler keeps the wall-clock
time across daylight-saving changes). Its target is the dispatcher, with the Input

    {"kind": "campaign_due", "tenant_id", "campaign_id", "dispatch_id"}

where `dispatch_id` is the one written on the campaign by the same request. A reschedule
updates the schedule (new time, new dispatch id); a schedule that fires with a dispatch id
the campaign no longer has (rescheduled, sent now, cancelled) moves nothing, so the
schedule is always written before the campaign, and a crash between the two is harmless.
Scheduler deletes the schedule once it has fired (`ActionAfterCompletion: DELETE`);
undeliverable invocations go to the dispatcher's DLQ after Scheduler's retries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from crm_core.clients import client
from crm_core.errors import Unprocessable
from crm_core.schedules import Schedules, error_code, one_time_request

CAMPAIGN_DUE = "campaign_due"
_NAME_PREFIX = "campaign-"
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class ScheduleTarget:
    """Where the stage's campaign schedules go (the function's environment)."""

    group: str
    dispatcher_arn: str
    role_arn: str
    dlq_arn: str


def schedule_name(campaign_id: str) -> str:
    return f"{_NAME_PREFIX}{campaign_id}"


def at_expression(moment: datetime, timezone: str) -> tuple[str, str]:
    """The `at(...)` expression and its time zone for an aware `moment`.

    The wall-clock time is written in `timezone` (a fraction of a second rounds up), except
    when that wall-clock time occurs twice there (the hour a daylight-saving change
    repeats): then it is written in UTC, which names the one moment meant."""
    local, zone = _local_time(moment, timezone)
    return f"at({local.strftime(_AT_FORMAT)})", zone


def _local_time(moment: datetime, timezone: str) -> tuple[datetime, str]:
    """The whole-second wall-clock time of `at_expression`, and the zone it is written in."""
    if moment.tzinfo is None:
        raise ValueError("the moment must be aware")
    zone = ZoneInfo(timezone)
    utc = moment.astimezone(ZoneInfo("UTC"))
    if utc.microsecond:  # at() has whole seconds: never fire before the time asked
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    # Through UTC: astimezone() to the moment's own zone object would keep a wall-clock
    # time that does not exist there (one in a daylight-saving gap) as it is.
    local = utc.astimezone(zone)
    twin = local.replace(fold=1 - local.fold)
    if twin.utcoffset() != local.utcoffset():
        local, timezone = utc, "UTC"
    return local, timezone


def due_input(tenant_id: str, campaign_id: str, dispatch_id: str) -> str:
    """The Input the dispatcher receives when the schedule fires."""
    return json.dumps(
        {
            "kind": CAMPAIGN_DUE,
            "tenant_id": tenant_id,
            "campaign_id": campaign_id,
            "dispatch_id": dispatch_id,
        },
        separators=(",", ":"),
    )


class CampaignSchedules(Schedules):
    """Create, update and delete campaign schedules."""

    def __init__(
        self, target: ScheduleTarget, make_client: Callable[[], Any] = lambda: client("scheduler")
    ) -> None:
        super().__init__(make_client)
        self.target = target

    def request(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        moment: datetime,
        timezone: str,
    ) -> dict[str, Any]:
        """The CreateSchedule (and UpdateSchedule: it replaces every field) parameters."""
        local, zone = _local_time(moment, timezone)
        return one_time_request(
            name=schedule_name(campaign_id),
            group=self.target.group,
            at=local,
            timezone=zone,
            function_arn=self.target.dispatcher_arn,
            role_arn=self.target.role_arn,
            dlq_arn=self.target.dlq_arn,
            payload=due_input(tenant_id, campaign_id, dispatch_id),
            description=f"Campaign {campaign_id} of tenant {tenant_id}",
        )

    def put(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        moment: datetime,
        timezone: str,
    ) -> None:
        """Create the campaign's schedule, or update it when it exists."""
        params = self.request(tenant_id, campaign_id, dispatch_id, moment, timezone)
        try:
            self.upsert(params)
        except ClientError as exc:
            if error_code(exc) == "ValidationException":
                # Scheduler is the judge of what it can fire (a time zone it does not know,
                # say): the client's 422, not our 500.
                message = exc.response.get("Error", {}).get("Message", "refused")
                raise Unprocessable(
                    f"the schedule was refused: {message}",
                    [{"loc": ["body", "send_at"], "msg": str(message)}],
                ) from None
            raise

    def delete(self, campaign_id: str) -> bool:
        """Delete the campaign's schedule; False when there was none (never made, or it
        fired and Scheduler deleted it)."""
        return self.remove(schedule_name(campaign_id), self.target.group)
