"""Events of support cases (source `crm.cases`): cases opened, worked, timed and rated."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent
from crm_core.records.case import Case

SOURCE = "crm.cases"
PRODUCER = "cases"
EXCERPT_CHARS = 1000


class _CasesEvent(DomainEvent):
    SOURCE: ClassVar[str] = SOURCE
    PRODUCER: ClassVar[str] = PRODUCER


class CaseData(BaseModel):
    model_config = EVENT_MODEL
    case: Case


class CaseAssignedData(BaseModel):
    model_config = EVENT_MODEL
    case: Case
    previous_assignee_id: str | None = None
    by_policy: str | None = Field(
        default=None, description="round_robin or least_open when the queue chose; else null."
    )


class CaseUpdatedData(BaseModel):
    model_config = EVENT_MODEL
    case: Case = Field(description="The case after the change.")
    changed: list[str] = Field(
        description="The fields that changed (status and assignee have events of their own)."
    )
    previous: dict[str, Any] = Field(description="Each changed field's value before.")


class CaseStatusData(BaseModel):
    model_config = EVENT_MODEL
    case: Case
    previous_status: str


class CaseEntryFacts(BaseModel):
    """A conversation entry, its text cut to an excerpt (the case holds it whole)."""

    model_config = EVENT_MODEL
    id: str
    kind: Literal["reply", "note", "inbound"]
    public: bool
    excerpt: str = Field(description=f"The first {EXCERPT_CHARS} characters of the text.")
    author_id: str | None = None
    from_address: str | None = None
    message_id: str | None = None
    attachments: int = Field(description="How many attachments it has.")
    created_at: str


class CaseRepliedData(BaseModel):
    model_config = EVENT_MODEL
    case: Case
    entry: CaseEntryFacts


class CaseSlaData(BaseModel):
    model_config = EVENT_MODEL
    case: Case
    target: Literal["first_response", "next_response", "resolution"]
    due_at: str = Field(description="When the target is (or was) due.")


class CaseReopenedData(BaseModel):
    model_config = EVENT_MODEL
    case: Case
    by: Literal["customer", "agent"]


class CaseRatedData(BaseModel):
    model_config = EVENT_MODEL
    case_id: str
    contact_id: str | None = None
    assignee_id: str | None = None
    score: int
    comment: str | None = None
    rated_at: str


class CaseOpened(_CasesEvent):
    """A case was opened (from the API, or by an email to a queue's address)."""

    DETAIL_TYPE: ClassVar[str] = "CaseOpened"
    data: CaseData


class CaseUpdated(_CasesEvent):
    """Fields of a case changed: its subject, priority, queue, contact, tags... (a priority
    change moves its SLA due times)."""

    DETAIL_TYPE: ClassVar[str] = "CaseUpdated"
    data: CaseUpdatedData


class CaseAssigned(_CasesEvent):
    """A case got an assignee (or lost one: `case.assignee_id` null)."""

    DETAIL_TYPE: ClassVar[str] = "CaseAssigned"
    data: CaseAssignedData


class CaseReplied(_CasesEvent):
    """An entry joined a case's conversation: an agent's public reply (emailed to the
    contact), an internal note, or an inbound email."""

    DETAIL_TYPE: ClassVar[str] = "CaseReplied"
    data: CaseRepliedData


class CaseStatusChanged(_CasesEvent):
    """A case moved from one status to another."""

    DETAIL_TYPE: ClassVar[str] = "CaseStatusChanged"
    data: CaseStatusData


class CaseSlaWarning(_CasesEvent):
    """A case's SLA target passed its warning share (once per target and cycle)."""

    DETAIL_TYPE: ClassVar[str] = "CaseSlaWarning"
    data: CaseSlaData


class CaseSlaBreached(_CasesEvent):
    """A case's SLA target passed its due time unmet (once per target and cycle)."""

    DETAIL_TYPE: ClassVar[str] = "CaseSlaBreached"
    data: CaseSlaData


class CaseSolved(_CasesEvent):
    """A case was solved (its satisfaction email goes out with it)."""

    DETAIL_TYPE: ClassVar[str] = "CaseSolved"
    data: CaseData


class CaseReopened(_CasesEvent):
    """A solved case was reopened, by the customer's reply or by an agent."""

    DETAIL_TYPE: ClassVar[str] = "CaseReopened"
    data: CaseReopenedData


class CaseRated(_CasesEvent):
    """The customer rated a solved case (once), through the satisfaction link of its solved
    email (published by the csat function)."""

    PRODUCER: ClassVar[str] = "csat"
    DETAIL_TYPE: ClassVar[str] = "CaseRated"
    data: CaseRatedData
