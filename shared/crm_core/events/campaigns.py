"""Events of segments and campaigns (source `crm.campaigns`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent

SOURCE = "crm.campaigns"
PRODUCER = "campaigns"


class SegmentData(BaseModel):
    model_config = EVENT_MODEL

    segment_id: str
    name: str
    filter: dict[str, Any] = Field(description="The segment's filter, as given.")
    version: int


class SegmentDeletedData(BaseModel):
    model_config = EVENT_MODEL

    segment_id: str


class _CampaignsEvent(DomainEvent):
    SOURCE: ClassVar[str] = SOURCE
    PRODUCER: ClassVar[str] = PRODUCER


class SegmentCreated(_CampaignsEvent):
    """A segment was defined."""

    DETAIL_TYPE: ClassVar[str] = "SegmentCreated"
    data: SegmentData


class SegmentUpdated(_CampaignsEvent):
    """A segment's name, description or filter changed (its data is the segment after)."""

    DETAIL_TYPE: ClassVar[str] = "SegmentUpdated"
    data: SegmentData


class SegmentDeleted(_CampaignsEvent):
    """A segment was deleted (campaigns already sent keep their audience)."""

    DETAIL_TYPE: ClassVar[str] = "SegmentDeleted"
    data: SegmentDeletedData
