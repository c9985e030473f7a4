"""A support case as clients send it and as the API returns it. PRODUCT.md, "Support
cases". The statuses and their moves are in `crm_core.cases.lifecycle`, the SLA targets in
`crm_core.cases.case_sla`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    Attributes,
    Name,
    PatchBody,
    Tags,
    Ulid,
    UserId,
)

MAX_DESCRIPTION_CHARS = 20_000
MAX_REPLY_CHARS = 50_000
MAX_QUEUE_MEMBERS = 100

Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["email", "web", "phone", "api"]
CaseType = Literal["question", "incident", "problem", "task"]
OpeningStatus = Literal["new", "open", "pending", "on_hold"]
Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Assignment = Literal["round_robin", "least_open", "manual"]
SlaFilter = Literal["breached", "at_risk"]

Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=250, pattern=NOT_BLANK), STRIPPED
]
Description = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_DESCRIPTION_CHARS, pattern=NOT_BLANK),
    STRIPPED,
]
ReplyText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_REPLY_CHARS, pattern=NOT_BLANK), STRIPPED
]
Comment = Annotated[
    str, StringConstraints(min_length=1, max_length=2000, pattern=NOT_BLANK), STRIPPED
]


class CaseCreate(BaseModel):
    """`POST /cases`. With a queue and no assignee, the queue's policy assigns it."""

    model_config = INPUT_MODEL

    subject: Subject
    description: Description | None = None
    contact_id: Ulid | None = None
    company_id: Ulid | None = None
    priority: Priority = "normal"
    type: CaseType | None = None
    channel: Channel = "api"
    queue_id: Ulid | None = None
    assignee_id: UserId | None = None
    status: OpeningStatus = Field(default="new", description="A case opens unsolved.")
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)


class CasePatch(PatchBody):
    """PATCH /cases/{id}: sent fields change, null clears; attributes merge (RFC 7396).
    `status` moves as a help desk allows (`crm_core.cases.lifecycle`); a closed case does
    not change."""

    subject: Subject | None = None
    description: Description | None = None
    contact_id: Ulid | None = None
    company_id: Ulid | None = None
    priority: Priority | None = None
    type: CaseType | None = None
    queue_id: Ulid | None = None
    assignee_id: UserId | None = None
    status: Status | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None

    NOT_NULL = ("subject", "priority", "status")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class ReplyCreate(BaseModel):
    """`POST /cases/{id}/replies`: public, a reply to the contact and a response; else an
    internal note. `status` moves the case with the reply (as "submit as pending")."""

    model_config = INPUT_MODEL

    body: ReplyText
    public: bool = Field(strict=True)
    status: Status | None = None


class SlaTargetOut(BaseModel):
    model_config = OUTPUT_MODEL
    target_minutes: int
    due_at: str | None = Field(description="Null while paused, and once met.")
    met_at: str | None = None
    breached: bool
    paused: bool


class CaseSla(BaseModel):
    model_config = OUTPUT_MODEL
    first_response: SlaTargetOut | None = None
    next_response: SlaTargetOut | None = None
    resolution: SlaTargetOut | None = None


class Satisfaction(BaseModel):
    model_config = OUTPUT_MODEL
    score: int
    comment: str | None = None
    rated_at: str


class Case(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    subject: str
    description: str | None = None
    contact_id: str | None = None
    company_id: str | None = None
    priority: str
    type: str | None = None
    channel: str
    queue_id: str | None = None
    assignee_id: str | None = None
    status: str
    tags: list[str]
    attributes: dict[str, Any]
    sla: CaseSla
    sla_state: str | None = Field(
        default=None, description="breached or at_risk (as `GET /cases?sla=` lists it)."
    )
    satisfaction: Satisfaction | None = None
    follow_up_of: str | None = Field(
        default=None, description="The closed case a customer wrote to, opening this one."
    )
    first_responded_at: str | None = None
    solved_at: str | None = None
    closed_at: str | None = None
    reopened: int = Field(description="How often the case was reopened after solved.")
    created_at: str
    updated_at: str
    created_by: str
    version: int


class CasePage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Case]
    next_cursor: str | None


class AttachmentOut(BaseModel):
    model_config = OUTPUT_MODEL
    filename: str
    content_type: str
    size: int
    kept: bool = Field(description="False when over the size limit: listed, not stored.")


class AttachmentLink(BaseModel):
    model_config = OUTPUT_MODEL
    filename: str
    content_type: str
    size: int
    url: str = Field(description="A presigned GET of the file; anyone holding it can download.")
    expires_at: str


class ConversationEntry(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    kind: Literal["reply", "note", "inbound"]
    public: bool
    body: str
    author_id: str | None = Field(default=None, description="The agent, for replies and notes.")
    from_address: str | None = Field(default=None, description="The sender, for inbound mail.")
    message_id: str | None = None
    attachments: list[AttachmentOut]
    created_at: str


class ConversationPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[ConversationEntry]
    next_cursor: str | None


Mailbox = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,29}$")]
Members = Annotated[list[UserId], Field(max_length=MAX_QUEUE_MEMBERS)]


class QueueCreate(BaseModel):
    """`POST /queues`. `mailbox`: mail to `<tenant>.<mailbox>@<the stage's mail domain>`
    opens cases in the queue (one queue per mailbox)."""

    model_config = INPUT_MODEL
    name: Name
    members: Members = Field(default_factory=list)
    assignment: Assignment = "manual"
    mailbox: Mailbox | None = None


class QueuePatch(PatchBody):
    name: Name | None = None
    members: Members | None = None
    assignment: Assignment | None = None
    mailbox: Mailbox | None = None

    NOT_NULL = ("name", "members", "assignment")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class Queue(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    name: str
    members: list[str]
    assignment: str
    mailbox: str | None = None
    address: str | None = Field(
        default=None, description="Mail to this address opens cases in the queue."
    )
    open_cases: int = Field(description="Its unsolved cases.")
    open_by_member: dict[str, int] = Field(description="Unsolved cases per member.")
    created_at: str
    updated_at: str
    version: int


class QueuePage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Queue]
    next_cursor: str | None


class RatingCreate(BaseModel):
    """`POST /csat?token=`: the customer's score of a solved case, once."""

    model_config = INPUT_MODEL
    score: Annotated[int, Field(strict=True, ge=1, le=5)]
    comment: Comment | None = None
