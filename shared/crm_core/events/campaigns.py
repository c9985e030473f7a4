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


class CampaignData(BaseModel):
    """A campaign at the moment of the event (its bodies left out)."""

    model_config = EVENT_MODEL

    campaign_id: str
    name: str
    segment_id: str
    state: str = Field(description="The state after the event.")
    version: int
    dispatch_id: str | None = Field(
        default=None, description="The send this event belongs to (one per schedule or send)."
    )
    send_at: str | None = Field(default=None, description="The scheduled time, UTC.")
    timezone: str | None = None
    reason: str | None = Field(default=None, description="Why it paused, failed or was cancelled.")
    stats: dict[str, int] = Field(
        default_factory=dict, description="The counters when the event happened."
    )


class CampaignCreated(_CampaignsEvent):
    """A campaign was drafted."""

    DETAIL_TYPE: ClassVar[str] = "CampaignCreated"
    data: CampaignData


class CampaignUpdated(_CampaignsEvent):
    """A draft or scheduled campaign's content, sender or segment changed."""

    DETAIL_TYPE: ClassVar[str] = "CampaignUpdated"
    data: CampaignData


class CampaignScheduled(_CampaignsEvent):
    """A campaign will send at `send_at` (a one-time EventBridge Scheduler schedule)."""

    DETAIL_TYPE: ClassVar[str] = "CampaignScheduled"
    data: CampaignData


class CampaignSendRequested(_CampaignsEvent):
    """Send now: the dispatcher takes the audience and queues the recipients."""

    DETAIL_TYPE: ClassVar[str] = "CampaignSendRequested"
    data: CampaignData


class CampaignSendingStarted(_CampaignsEvent):
    """A scheduled campaign's time came: it is sending."""

    DETAIL_TYPE: ClassVar[str] = "CampaignSendingStarted"
    data: CampaignData


class CampaignPaused(_CampaignsEvent):
    """Sending stopped until a resume: by a user, or by the complaint rate (`reason`)."""

    DETAIL_TYPE: ClassVar[str] = "CampaignPaused"
    data: CampaignData


class CampaignResumed(_CampaignsEvent):
    """A paused campaign sends again: the dispatcher queues its recipients not yet handled."""

    DETAIL_TYPE: ClassVar[str] = "CampaignResumed"
    data: CampaignData


class CampaignCancelled(_CampaignsEvent):
    """A campaign will send nothing more (recipients not yet handled stay unsent)."""

    DETAIL_TYPE: ClassVar[str] = "CampaignCancelled"
    data: CampaignData


class CampaignSent(_CampaignsEvent):
    """Every recipient of the campaign was handled: sent, failed or skipped."""

    DETAIL_TYPE: ClassVar[str] = "CampaignSent"
    data: CampaignData


class CampaignFailed(_CampaignsEvent):
    """A campaign could not send (`reason`): an empty audience at send time, say."""

    DETAIL_TYPE: ClassVar[str] = "CampaignFailed"
    data: CampaignData
