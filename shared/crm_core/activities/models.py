"""Activities as clients send them and as the API returns them: one model per type.

A type's `*Fields` model holds what only that type has and its rules; the input model of a
type adds `type` and `occurred_at`, the output model adds what the CRM owns (id, contact,
author, timestamps, version). Users log the types in `USER_TYPES` through the API; the
CRM's own functions log the `SYSTEM_TYPES` (a lead's form, email engagement, unsubscribe).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from crm_core.clock import format_iso
from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    WHOLE,
    Email,
    PatchBody,
    Ulid,
    UserId,
    UtcDateTime,
)


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
    CASE_MESSAGE = "case_message"


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


def _milliseconds(moment: datetime) -> datetime:
    # Stored times have millisecond precision, as every timestamp of the API.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# An ISO 8601 time with a zone (naive times are refused: "10:00" means nothing alone),
# within fields.UtcDateTime's range, in UTC to the millisecond.
Moment = Annotated[UtcDateTime, AfterValidator(_milliseconds)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=998, pattern=NOT_BLANK), STRIPPED
]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), STRIPPED]
Attendee = Annotated[
    str, StringConstraints(min_length=1, max_length=254, pattern=NOT_BLANK), STRIPPED
]
Location = Annotated[str, StringConstraints(max_length=500), STRIPPED]
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
    duration_s: Annotated[int, Field(strict=True, ge=0, le=MAX_CALL_SECONDS), WHOLE] | None = None
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
    location: Location | None = None
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


class CaseMessageFields(BaseModel):
    """An entry of a support case's conversation (logged by activity_events from
    CaseReplied): a reply to the customer, an internal note, or the customer's email."""

    model_config = INPUT_MODEL

    case_id: Ulid
    entry_id: Ulid
    kind: Literal["reply", "note", "inbound"]
    public: bool
    subject: Subject
    excerpt: Annotated[str, StringConstraints(max_length=1000)] = ""


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
    ActivityType.CASE_MESSAGE: CaseMessageFields,
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
    deal_id: Ulid | None = Field(
        default=None,
        description="The deal it is about (one of yours): it shows in the deal's timeline.",
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
    raw = data.model_dump(
        by_alias=True, exclude={"type", "occurred_at", "deal_id"}, exclude_none=True
    )
    return validate_fields(ActivityType(data.type), raw)


class ActivityPatch(PatchBody):
    """PATCH /contacts/{id}/activities/{aid}: the fields sent are changed, null clears an
    optional one. Each field has the type it has in the types that hold it; which fields
    exist depends on the activity's type, and the result is checked by that type's rules (a
    meeting's new end against its stored start, say). A task's status, due time and
    assignee are here; `type` and `occurred_at` never change. `deal_id` applies to every
    type: another deal moves the activity to that deal's timeline, null takes it off."""

    model_config = ConfigDict(**INPUT_MODEL, populate_by_name=True)

    deal_id: Ulid | None = Field(default=None, description="The deal it is about; null: none.")
    direction: Direction | None = None
    outcome: CallOutcome | MeetingOutcome | None = None
    duration_s: Annotated[int, Field(strict=True, ge=0, le=MAX_CALL_SECONDS), WHOLE] | None = None
    body: Annotated[str, StringConstraints(max_length=MAX_EMAIL_BODY_CHARS)] | None = None
    subject: Subject | None = None
    from_: Email | None = Field(default=None, alias="from")
    to: Annotated[list[Email], Field(max_length=MAX_RECIPIENTS)] | None = None
    cc: Annotated[list[Email], Field(max_length=MAX_RECIPIENTS)] | None = None
    title: Short | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    attendees: Annotated[list[Attendee], Field(max_length=MAX_ATTENDEES)] | None = None
    location: Location | None = None
    due_at: Moment | None = None
    assignee_id: UserId | None = None
    priority: TaskPriority | None = None
    status: TaskStatus | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, include=self.model_fields_set)


# Outputs ----------------------------------------------------------------------------------
class _Stored(BaseModel):
    model_config = OUTPUT_MODEL

    id: str = Field(description="A ULID whose time is occurred_at.")
    contact_id: str
    deal_id: str | None = Field(default=None, description="The deal it is about, if any.")
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


class CaseMessageActivity(_Stored):
    type: Literal["case_message"]
    case_id: str
    entry_id: str
    kind: str = Field(description="reply (to the customer), note (internal) or inbound (email)")
    public: bool
    subject: str
    excerpt: str = ""


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
    | UnsubscribedActivity
    | CaseMessageActivity,
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
