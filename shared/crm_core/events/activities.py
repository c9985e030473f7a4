"""Events of the activities function (source `crm.activities`).

Events carry an activity's facts (type, time, author, outcome, campaign, link...), never
its free text: bodies, subjects, addresses and attendees stay in the table, so the events
that scoring and reports read stay small and hold little personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent
from crm_core.fields import Ulid

SOURCE = "crm.activities"
PRODUCER = "activities"


class _ActivitiesEvent(DomainEvent):
    SOURCE: ClassVar[str] = SOURCE
    PRODUCER: ClassVar[str] = PRODUCER


class ActivityFacts(BaseModel):
    """An activity without its free text. Fields that do not apply to its type are null."""

    model_config = EVENT_MODEL

    id: Ulid
    contact_id: Ulid
    deal_id: Ulid | None = Field(default=None, description="The deal it is about, if any.")
    type: str = Field(description="call, email, meeting, note, task, form_submission, ...")
    occurred_at: str
    created_by: str
    direction: str | None = Field(default=None, description="call, email: inbound | outbound")
    outcome: str | None = Field(default=None, description="call or meeting outcome")
    duration_s: int | None = Field(default=None, description="call: seconds; meeting: length")
    status: str | None = Field(default=None, description="task: open | completed | cancelled")
    priority: str | None = None
    due_at: str | None = None
    assignee_id: str | None = None
    completed_at: str | None = None
    campaign_id: str | None = None
    url: str | None = Field(default=None, description="email_clicked: the link clicked")
    bounce_type: str | None = None
    method: str | None = Field(default=None, description="unsubscribed: how")
    lead_id: str | None = None
    source_id: str | None = None
    case_id: str | None = Field(default=None, description="case_message: the support case")

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> ActivityFacts:
        values = {name: item.get(name) for name in cls.model_fields if name != "type"}
        if item.get("activity_type") == "meeting":
            values["duration_s"] = _seconds_between(item["starts_at"], item["ends_at"])
        return cls.model_validate({**values, "type": item["activity_type"]})


def _seconds_between(start: str, end: str) -> int:
    from datetime import datetime

    return int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


class ActivityData(BaseModel):
    model_config = EVENT_MODEL
    activity: ActivityFacts


class ActivityChangeData(BaseModel):
    model_config = EVENT_MODEL
    activity: ActivityFacts = Field(description="The activity after the change.")
    changed: list[str] = Field(description="The names of the fields the change set.")


class TaskData(BaseModel):
    model_config = EVENT_MODEL
    task: ActivityFacts


class ActivityLogged(_ActivitiesEvent):
    """An activity was logged on a contact: by a user (call, email, meeting, note, task) or
    by the CRM (form submission, email engagement, unsubscribe)."""

    DETAIL_TYPE: ClassVar[str] = "ActivityLogged"
    data: ActivityData


class ActivityUpdated(_ActivitiesEvent):
    """Fields of an activity changed (a task completed, reassigned or rescheduled, say)."""

    DETAIL_TYPE: ClassVar[str] = "ActivityUpdated"
    data: ActivityChangeData


class ActivityDeleted(_ActivitiesEvent):
    """An activity was deleted by its author or an admin."""

    DETAIL_TYPE: ClassVar[str] = "ActivityDeleted"
    data: ActivityData


class TaskOverdue(_ActivitiesEvent):
    """An open task passed its due time (reported once per due time by the daily check)."""

    DETAIL_TYPE: ClassVar[str] = "TaskOverdue"
    PRODUCER: ClassVar[str] = "task_overdue"
    data: TaskData
