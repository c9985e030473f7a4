"""Activities as clients send them and as the API returns them: one model per type.

A type's `*Fields` model holds what only that type has and its rules; the input model of a
type adds `type` and `occurred_at`, the output model adds what the CRM owns (id, contact,
author, timestamps, version). Users log the types in `USER_TYPES` through the API; the
CRM's own functions log the `SYSTEM_TYPES` (a lead's form, email engagement, unsubscribe).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from crm_core.clock import format_iso
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, Email, Ulid, UserId


class ActivityType(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"
    FORM_SUBMISSION = "form_submission"
    EMAIL_DELIVERED = "email_delivered"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_BOUNCED = "email_bounced"
    UNSUBSCRIBED = "unsubscribed"


USER_TYPES = frozenset(
    {
        ActivityType.CALL,
        ActivityType.EMAIL,
        ActivityType.MEETING,
        ActivityType.NOTE,
        ActivityType.TASK,
    }
)
SYSTEM_TYPES = frozenset(set(ActivityType) - USER_TYPES)

# Free text is bounded so that an activity, its event and the request stay far below
# DynamoDB's 400 KB item and the API's 64 KB body.
MAX_TEXT_CHARS = 20_000
MAX_EMAIL_BODY_CHARS = 50_000
MAX_RECIPIENTS = 50
MAX_ATTENDEES = 100
MAX_MEETING = timedelta(days=7)
MAX_CALL_SECONDS = 24 * 3600
# Clocks differ: an `occurred_at` a little ahead of ours is a phone's clock, not the future.
CLOCK_SKEW = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _in_range(moment: datetime) -> datetime:
    if not _EPOCH <= moment <= _LATEST:
        raise ValueError("the time must be between 1970 and 9999")
    # Stored times have millisecond precision, as every timestamp of the API.
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso_text(value: Any) -> Any:
    # Pydantic would read a number (or digits) as Unix seconds, or milliseconds if large:
    # refuse the guess.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("a time is ISO 8601 text with a zone, such as 2025-06-01T09:30:00Z")


# An ISO 8601 time with a zone (naive times are refused: "10:00" means nothing alone).
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=998)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Attendee = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^https?://\S+$")]


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallOutcome(StrEnum):
    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    LEFT_VOICEMAIL = "left_voicemail"
    WRONG_NUMBER = "wrong_number"


class MeetingOutcome(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    RESCHEDULED = "rescheduled"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class BounceType(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    UNDETERMINED = "undetermined"


class UnsubscribeMethod(StrEnum):
    ONE_CLICK = "one_click"
    LINK = "link"
    COMPLAINT = "complaint"
    MANUAL = "manual"


# Fields of each type ---------------------------------------------------------------------
class CallFields(BaseModel):
    model_config = INPUT_MODEL

    direction: Direction
    outcome: CallOutcome
    duration_s: Annotated[int, Field(strict=True, ge=0, le=MAX_CALL_SECONDS)] | None = None
    body: Text | None = Field(default=None, description="Notes taken on the call.")


class EmailFields(BaseModel):
    model_config = ConfigDict(**INPUT_MODEL, populate_by_name=True, serialize_by_alias=True)

    direction: Direction
    subject: Subject
    from_: Email = Field(alias="from")
    to: Annotated[list[Email], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    cc: Annotated[list[Email], Field(max_length=MAX_RECIPIENTS)] = Field(default_factory=list)
    body: Annotated[str, StringConstraints(max_length=MAX_EMAIL_BODY_CHARS)] | None = None


class MeetingFields(BaseModel):
    model_config = INPUT_MODEL

    title: Short | None = None
    starts_at: Moment
    ends_at: Moment
    attendees: Annotated[list[Attendee], Field(max_length=MAX_ATTENDEES)] = Field(
        default_factory=list, description="Email addresses or names."
    )
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    outcome: MeetingOutcome = MeetingOutcome.SCHEDULED
    body: Text | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> MeetingFields:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_MEETING:
            raise ValueError("a meeting lasts at most 7 days")
        return self


class NoteFields(BaseModel):
    model_config = INPUT_MODEL

    body: Text


class TaskFields(BaseModel):
    model_config = INPUT_MODEL

    subject: Short
    due_at: Moment
    assignee_id: UserId | None = Field(
        default=None, description="Who should do it; the author when not given."
    )
    priority: TaskPriority = TaskPriority.MEDIUM
    status: TaskStatus = TaskStatus.OPEN
    body: Text | None = None


class FormSubmissionFields(BaseModel):
    model_config = INPUT_MODEL

    lead_id: Ulid
    source_id: Ulid
    source_name: Short | None = None
    fields: dict[
        Annotated[str, StringConstraints(max_length=100)],
        Annotated[str, StringConstraints(max_length=2000)],
    ] = Field(default_factory=dict, max_length=100, description="The form's fields, as mapped.")
    page_url: Url | None = None


class EmailEngagementFields(BaseModel):
    model_config = INPUT_MODEL

    campaign_id: Ulid | None = None
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    subject: Subject | None = None


class EmailClickedFields(EmailEngagementFields):
    url: Url


class EmailBouncedFields(EmailEngagementFields):
    bounce_type: BounceType


class UnsubscribedFields(BaseModel):
    model_config = INPUT_MODEL

    campaign_id: Ulid | None = None
    method: UnsubscribeMethod


FIELDS: dict[ActivityType, type[BaseModel]] = {
    ActivityType.CALL: CallFields,
    ActivityType.EMAIL: EmailFields,
    ActivityType.MEETING: MeetingFields,
    ActivityType.NOTE: NoteFields,
    ActivityType.TASK: TaskFields,
    ActivityType.FORM_SUBMISSION: FormSubmissionFields,
    ActivityType.EMAIL_DELIVERED: EmailEngagementFields,
    ActivityType.EMAIL_OPENED: EmailEngagementFields,
    ActivityType.EMAIL_CLICKED: EmailClickedFields,
    ActivityType.EMAIL_BOUNCED: EmailBouncedFields,
    ActivityType.UNSUBSCRIBED: UnsubscribedFields,
}


def validate_fields(activity_type: ActivityType, values: dict[str, Any]) -> dict[str, Any]:
    """The type's fields, validated and in their stored (JSON) form; ValidationError else."""
    model = FIELDS[activity_type].model_validate(values)
    stored: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name in ("starts_at", "ends_at", "due_at"):
        if name in stored:
            stored[name] = format_iso(getattr(model, name))
    return stored


# Inputs: POST /contacts/{id}/activities ---------------------------------------------------
class _Logged(BaseModel):
    occurred_at: Moment | None = Field(
        default=None,
        description="When it happened (default now; may be in the past, not the future).",
    )

    @model_validator(mode="after")
    def _not_in_the_future(self) -> _Logged:
        if self.occurred_at and self.occurred_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at is in the future; log what has happened")
        return self


class CallCreate(CallFields, _Logged):
    type: Literal["call"]


class EmailCreate(EmailFields, _Logged):
    type: Literal["email"]


class MeetingCreate(MeetingFields, _Logged):
    type: Literal["meeting"]

    @model_validator(mode="after")
    def _happened_when_it_started(self) -> MeetingCreate:
        # A meeting logged afterwards happened at its start; one logged ahead, now.
        if self.occurred_at is None and self.starts_at <= datetime.now(UTC):
            self.occurred_at = self.starts_at
        return self


class NoteCreate(NoteFields, _Logged):
    type: Literal["note"]


class TaskCreate(TaskFields, _Logged):
    type: Literal["task"]


ActivityCreate = Annotated[
    CallCreate | EmailCreate | MeetingCreate | NoteCreate | TaskCreate,
    Field(discriminator="type"),
]


def fields_of(
    data: CallCreate | EmailCreate | MeetingCreate | NoteCreate | TaskCreate,
) -> dict[str, Any]:
    """The type-specific fields of an input model (its stored form)."""
    raw = data.model_dump(by_alias=True, exclude={"type", "occurred_at"}, exclude_none=True)
    return validate_fields(ActivityType(data.type), raw)


class ActivityPatch(BaseModel):
    """PATCH /contacts/{id}/activities/{aid}: the fields sent are changed, null clears an
    optional one. Which fields exist depends on the activity's type; the result is checked
    by that type's rules (a meeting's new end against its stored start, say). A task's
    status, due time and assignee are here; `type` and `occurred_at` never change."""

    model_config = ConfigDict(**INPUT_MODEL, populate_by_name=True)

    direction: Direction | None = None
    outcome: str | None = Field(default=None, max_length=40)
    duration_s: int | None = None
    body: str | None = Field(default=None, max_length=MAX_EMAIL_BODY_CHARS)
    subject: str | None = Field(default=None, max_length=998)
    from_: str | None = Field(default=None, alias="from", max_length=254)
    to: list[str] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    cc: list[str] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    title: str | None = Field(default=None, max_length=200)
    starts_at: str | None = Field(default=None, max_length=40)
    ends_at: str | None = Field(default=None, max_length=40)
    attendees: list[str] | None = Field(default=None, max_length=MAX_ATTENDEES)
    location: str | None = Field(default=None, max_length=500)
    due_at: str | None = Field(default=None, max_length=40)
    assignee_id: str | None = Field(default=None, max_length=128)
    priority: TaskPriority | None = None
    status: TaskStatus | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ActivityPatch:
        if not self.model_fields_set:
            raise ValueError("the patch changes nothing")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, include=self.model_fields_set)


# Outputs ----------------------------------------------------------------------------------
class _Stored(BaseModel):
    model_config = OUTPUT_MODEL

    id: str = Field(description="A ULID whose time is occurred_at.")
    contact_id: str
    occurred_at: str
    created_by: str = Field(description="The user (or CRM function) that logged it.")
    created_at: str
    updated_at: str
    version: int


class CallActivity(_Stored):
    type: Literal["call"]
    direction: Direction
    outcome: CallOutcome
    duration_s: int | None = None
    body: str | None = None


class EmailActivity(_Stored):
    model_config = ConfigDict(**OUTPUT_MODEL, populate_by_name=True, serialize_by_alias=True)

    type: Literal["email"]
    direction: Direction
    subject: str
    from_: str = Field(alias="from")
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    body: str | None = None


class MeetingActivity(_Stored):
    type: Literal["meeting"]
    title: str | None = None
    starts_at: str
    ends_at: str
    attendees: list[str] = Field(default_factory=list)
    location: str | None = None
    outcome: MeetingOutcome
    body: str | None = None


class NoteActivity(_Stored):
    type: Literal["note"]
    body: str


class TaskActivity(_Stored):
    type: Literal["task"]
    subject: str
    due_at: str
    assignee_id: str
    priority: TaskPriority
    status: TaskStatus
    completed_at: str | None = Field(default=None, description="Set when status is completed.")
    overdue_at: str | None = Field(
        default=None, description="When the CRM reported the open task overdue (TaskOverdue)."
    )
    body: str | None = None


class FormSubmissionActivity(_Stored):
    type: Literal["form_submission"]
    lead_id: str
    source_id: str
    source_name: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    page_url: str | None = None


class _EmailEngagement(_Stored):
    campaign_id: str | None = None
    message_id: str | None = None
    subject: str | None = None


class EmailDeliveredActivity(_EmailEngagement):
    type: Literal["email_delivered"]


class EmailOpenedActivity(_EmailEngagement):
    type: Literal["email_opened"]


class EmailClickedActivity(_EmailEngagement):
    type: Literal["email_clicked"]
    url: str


class EmailBouncedActivity(_EmailEngagement):
    type: Literal["email_bounced"]
    bounce_type: BounceType


class UnsubscribedActivity(_Stored):
    type: Literal["unsubscribed"]
    campaign_id: str | None = None
    method: UnsubscribeMethod


Activity = Annotated[
    CallActivity
    | EmailActivity
    | MeetingActivity
    | NoteActivity
    | TaskActivity
    | FormSubmissionActivity
    | EmailDeliveredActivity
    | EmailOpenedActivity
    | EmailClickedActivity
    | EmailBouncedActivity
    | UnsubscribedActivity,
    Field(discriminator="type"),
]


class ActivityPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Activity]
    next_cursor: str | None


class TaskPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[TaskActivity]
    next_cursor: str | None
