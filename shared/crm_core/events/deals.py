"""Events of the deals function (source `crm.deals`): deals moving through pipelines."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent
from crm_core.fields import Ulid
from crm_core.records.deal import Deal

SOURCE = "crm.deals"
PRODUCER = "deals"


class _DealsEvent(DomainEvent):
    SOURCE: ClassVar[str] = SOURCE
    PRODUCER: ClassVar[str] = PRODUCER


class DealData(BaseModel):
    model_config = EVENT_MODEL
    deal: Deal


class DealChangeData(BaseModel):
    model_config = EVENT_MODEL
    deal: Deal = Field(description="The deal after the change.")
    changed: list[str] = Field(description="The names of the fields the change set.")
    previous: dict[str, Any] = Field(
        description="The value each changed field had before (absent fields as null)."
    )


class DealDeletedData(BaseModel):
    model_config = EVENT_MODEL
    deal_id: Ulid = Field(description="The deleted deal.")
    pipeline_id: str
    stage_id: str
    status: str
    contact_ids: list[str] = Field(description="The contacts the deal had.")
    company_id: str | None = None
    owner_id: str | None = None


class DealRottingData(BaseModel):
    model_config = EVENT_MODEL
    deal: Deal
    since: str = Field(description="When the deal entered its stage or last had an activity.")
    rotting_days: int = Field(description="The stage's rotting days.")


class DealCreated(_DealsEvent):
    """A deal was created."""

    DETAIL_TYPE: ClassVar[str] = "DealCreated"
    data: DealData


class DealUpdated(_DealsEvent):
    """Fields of a deal changed without a move to another stage."""

    DETAIL_TYPE: ClassVar[str] = "DealUpdated"
    data: DealChangeData


class DealStageChanged(_DealsEvent):
    """A deal moved to another stage (or pipeline); `previous` holds where it was."""

    DETAIL_TYPE: ClassVar[str] = "DealStageChanged"
    data: DealChangeData


class DealWon(_DealsEvent):
    """A deal entered its pipeline's won stage."""

    DETAIL_TYPE: ClassVar[str] = "DealWon"
    data: DealData


class DealLost(_DealsEvent):
    """A deal entered a lost stage, with its lost reason."""

    DETAIL_TYPE: ClassVar[str] = "DealLost"
    data: DealData


class DealDeleted(_DealsEvent):
    """A deal was deleted."""

    DETAIL_TYPE: ClassVar[str] = "DealDeleted"
    data: DealDeletedData


class DealRotting(_DealsEvent):
    """A deal stayed in an open stage longer than the stage's rotting days without an
    activity: sent once, at that moment."""

    DETAIL_TYPE: ClassVar[str] = "DealRotting"
    data: DealRottingData
