"""Events of lead intake (source `crm.leads`).

LeadReceived carries where a lead came from and its id, never its payload: the payload
(personal data, up to the webhook's body limit) stays in the lead's item, which the lead
processor reads.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent, IsoTime
from crm_core.fields import Ulid

SOURCE = "crm.leads"


class LeadReceivedData(BaseModel):
    model_config = EVENT_MODEL

    lead_id: Ulid
    source_id: Ulid
    received_at: IsoTime
    content_type: str = Field(description="application/json or application/x-www-form-urlencoded")
    external_id: str | None = Field(
        default=None, description="The sender's own id of the lead, when it gave one."
    )


class LeadReceived(DomainEvent):
    """A lead source delivered a lead through its signed webhook; its raw payload is
    stored under `lead_id`, not yet processed."""

    SOURCE: ClassVar[str] = SOURCE
    DETAIL_TYPE: ClassVar[str] = "LeadReceived"
    PRODUCER: ClassVar[str] = "lead_webhook"

    data: LeadReceivedData
