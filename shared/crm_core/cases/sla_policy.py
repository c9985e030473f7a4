"""A tenant's SLA policy as the API takes it (`PUT /settings/sla`), and the calendar and
targets the clocks use. PRODUCT.md, "Support cases".

Business hours are wall-clock intervals per weekday in one IANA zone, `"24:00"` allowed as
an end; holidays are local dates. Targets are business minutes per priority for first
response, next response and resolution; a target left out (or null) is not tracked for that
priority. Until a tenant sets a policy, `DEFAULT_POLICY` applies: weekdays 09:00 to 17:00
UTC, and targets a help desk commonly starts from.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from crm_core.cases.business_time import BusinessCalendar
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, field_error
from crm_core.timezones import TimeZone

PRIORITIES = ("low", "normal", "high", "urgent")
Priority = Literal["low", "normal", "high", "urgent"]
TARGETS = ("first_response", "next_response", "resolution")
Target = Literal["first_response", "next_response", "resolution"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_A_DAY = 12
MAX_HOLIDAYS = 400
MAX_TARGET_MINUTES = 365 * 24 * 60
_CLOCK = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")

Clock = Annotated[str, StringConstraints(pattern=_CLOCK.pattern)]
Minutes = Annotated[int, Field(strict=True, ge=1, le=MAX_TARGET_MINUTES)]


def _holiday(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value} is not a date") from None


Holiday = Annotated[
    str,
    StringConstraints(pattern=r"^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    AfterValidator(_holiday),
]
Interval = Annotated[list[Clock], Field(min_length=2, max_length=2)]
DayHours = Annotated[list[Interval], Field(max_length=MAX_INTERVALS_A_DAY)]


def minutes_of(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Week(BaseModel):
    """Each weekday's intervals, [start, end) in local time; a day left out is closed."""

    model_config = INPUT_MODEL
    mon: DayHours = []
    tue: DayHours = []
    wed: DayHours = []
    thu: DayHours = []
    fri: DayHours = []
    sat: DayHours = []
    sun: DayHours = []

    @model_validator(mode="after")
    def _intervals(self) -> Week:
        for day in WEEKDAYS:
            previous_end = -1
            for n, (start, end) in enumerate(sorted(getattr(self, day), key=minutes_of_pair)):
                first, last = minutes_of(start), minutes_of(end)
                if first >= last:
                    raise field_error(
                        "Week", (day, n), "an interval ends after it starts", [start, end]
                    )
                if first < previous_end:
                    raise field_error(
                        "Week", (day, n), "a day's intervals do not overlap", [start, end]
                    )
                previous_end = last
        return self

    def calendar_week(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        return tuple(
            tuple(sorted((minutes_of(start), minutes_of(end)) for start, end in getattr(self, day)))
            for day in WEEKDAYS
        )


def minutes_of_pair(interval: list[str]) -> tuple[int, int]:
    return minutes_of(interval[0]), minutes_of(interval[1])


class BusinessHours(BaseModel):
    model_config = INPUT_MODEL
    timezone: TimeZone
    week: Week
    holidays: Annotated[list[Holiday], Field(max_length=MAX_HOLIDAYS)] = []

    @model_validator(mode="after")
    def _open_some_time(self) -> BusinessHours:
        if not any(self.week.calendar_week()):
            raise field_error("BusinessHours", ("week",), "business hours need an open day", None)
        return self


class TargetMinutes(BaseModel):
    """Business minutes per target; one left out (or null) is not tracked."""

    model_config = INPUT_MODEL
    first_response_minutes: Minutes | None = None
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None


class SlaTargets(BaseModel):
    model_config = INPUT_MODEL
    low: TargetMinutes | None = None
    normal: TargetMinutes | None = None
    high: TargetMinutes | None = None
    urgent: TargetMinutes | None = None


class SlaPolicyBody(BaseModel):
    """`PUT /settings/sla`."""

    model_config = INPUT_MODEL
    business_hours: BusinessHours
    targets: SlaTargets
    warn_at_percent: Annotated[int, Field(strict=True, ge=1, le=99)] = 75


class SlaPolicy(BaseModel):
    """The policy in force (`GET /settings/sla`)."""

    model_config = OUTPUT_MODEL
    business_hours: dict[str, Any]
    targets: dict[str, dict[str, int | None]]
    warn_at_percent: int
    version: int = Field(description="0 until the tenant sets a policy.")
    updated_at: str | None = None

    def calendar(self) -> BusinessCalendar:
        return calendar_of(self.business_hours)

    def target_seconds(self, priority: str, target: str) -> int | None:
        minutes = (self.targets.get(priority) or {}).get(f"{target}_minutes")
        return None if minutes is None else int(minutes) * 60


def calendar_of(hours: dict[str, Any]) -> BusinessCalendar:
    """The calendar of stored business hours (as `BusinessHours` dumps them)."""
    week = tuple(
        tuple(sorted((minutes_of(s), minutes_of(e)) for s, e in hours["week"].get(day) or []))
        for day in WEEKDAYS
    )
    holidays = frozenset(date.fromisoformat(day) for day in hours.get("holidays") or [])
    return BusinessCalendar(hours["timezone"], week, holidays)


def stored_form(body: SlaPolicyBody) -> dict[str, Any]:
    """The policy's stored (and shown) form: every day and every target present."""
    week = body.business_hours.week
    return {
        "business_hours": {
            "timezone": body.business_hours.timezone,
            "week": {
                day: sorted((list(i) for i in getattr(week, day)), key=minutes_of_pair)
                for day in WEEKDAYS
            },
            "holidays": sorted(set(body.business_hours.holidays)),
        },
        "targets": {
            priority: (getattr(body.targets, priority) or TargetMinutes()).model_dump()
            for priority in PRIORITIES
        },
        "warn_at_percent": body.warn_at_percent,
    }


NINE_TO_FIVE = [["09:00", "17:00"]]
DEFAULT_POLICY: dict[str, Any] = {
    "business_hours": {
        "timezone": "UTC",
        "week": {day: (NINE_TO_FIVE if day not in ("sat", "sun") else []) for day in WEEKDAYS},
        "holidays": [],
    },
    # Business minutes: urgent answered within the hour and solved within a working day.
    "targets": {
        "urgent": {
            "first_response_minutes": 60,
            "next_response_minutes": 120,
            "resolution_minutes": 480,
        },
        "high": {
            "first_response_minutes": 240,
            "next_response_minutes": 480,
            "resolution_minutes": 1440,
        },
        "normal": {
            "first_response_minutes": 480,
            "next_response_minutes": 960,
            "resolution_minutes": 2400,
        },
        "low": {
            "first_response_minutes": 960,
            "next_response_minutes": 1920,
            "resolution_minutes": 4800,
        },
    },
    "warn_at_percent": 75,
}
