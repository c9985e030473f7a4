"""The envelope every domain event shares: `{"metadata": {...}, "data": {...}}`.

`metadata.event_id` is ours (a ULID written with the change), stable across every retry
and replay, so consumers deduplicate on it; EventBridge's own `id` changes on a re-send.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crm_core.clock import now_iso
from crm_core.ids import ULID_PATTERN, new_ulid

ISO_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
IsoTime = Annotated[
    str,
    StringConstraints(pattern=ISO_TIME_PATTERN),
    Field(json_schema_extra={"format": "date-time"}),
]
EventId = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64)]

# Events are read by consumers that may be older or newer than the producer: unknown
# fields are ignored (a tolerant reader), and models are built on first use.
EVENT_MODEL = ConfigDict(
    extra="ignore",
    defer_build=True,
    frozen=True,
    # Producers always write every field (null when unset): the schemas say so.
    json_schema_serialization_defaults_required=True,
)


class ActorType(StrEnum):
    USER = "user"
    SYSTEM = "system"
    LEAD_SOURCE = "lead_source"


class Actor(BaseModel):
    """Who caused the change: a user (Cognito subject), a function, or a lead source."""

    model_config = EVENT_MODEL

    type: ActorType
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class EventMetadata(BaseModel):
    model_config = EVENT_MODEL

    event_id: EventId
    event_version: Annotated[int, Field(ge=1)]
    tenant_id: TenantId
    occurred_at: IsoTime
    correlation_id: Annotated[str, StringConstraints(max_length=256)] | None = None
    actor: Actor


@dataclass(frozen=True)
class Origin:
    """Where a change comes from: carried from the request into the events it produces."""

    actor: Actor
    correlation_id: str | None = None

    @classmethod
    def user(cls, user_id: str, correlation_id: str | None = None) -> Origin:
        return cls(Actor(type=ActorType.USER, id=user_id), correlation_id)

    @classmethod
    def system(cls, name: str, correlation_id: str | None = None) -> Origin:
        return cls(Actor(type=ActorType.SYSTEM, id=name), correlation_id)

    @classmethod
    def lead_source(cls, source_id: str, correlation_id: str | None = None) -> Origin:
        return cls(Actor(type=ActorType.LEAD_SOURCE, id=source_id), correlation_id)


class DomainEvent(BaseModel):
    """One event type: its source and detail-type, and the model of its `data`.

    Subclasses set SOURCE, DETAIL_TYPE, PRODUCER and a typed `data` field; the docstring
    is the event's description in the catalog (docs/events.md, events/schemas/).
    """

    model_config = EVENT_MODEL

    SOURCE: ClassVar[str]
    DETAIL_TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    PRODUCER: ClassVar[str]

    metadata: EventMetadata
    data: Any

    @classmethod
    def create(
        cls, tenant_id: str, origin: Origin, data: Any, occurred_at: str | None = None
    ) -> Self:
        """A new event of this type, with a fresh id, happening at the change's time
        (`occurred_at`, the `updated_at` it wrote) or now."""
        metadata = EventMetadata(
            event_id=new_ulid(),
            event_version=cls.VERSION,
            tenant_id=tenant_id,
            occurred_at=occurred_at or now_iso(),
            correlation_id=origin.correlation_id,
            actor=origin.actor,
        )
        return cls(metadata=metadata, data=data)

    @property
    def event_id(self) -> str:
        return self.metadata.event_id

    @property
    def tenant_id(self) -> str:
        return self.metadata.tenant_id

    def detail_json(self) -> str:
        return self.model_dump_json(exclude_none=False)


def trace_header() -> str | None:
    """The X-Ray trace of the current invocation, for the bus to continue it."""
    return os.environ.get("_X_AMZN_TRACE_ID") or None
