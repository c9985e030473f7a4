"""Events of lead scoring (source `crm.scoring`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent


class ScoringModelChangedData(BaseModel):
    model_config = EVENT_MODEL

    version: int = Field(description="The model's new version.")
    previous_version: int = Field(description="The version it replaces (0: the default).")
    half_life_days: float
    mql_threshold: int
    sql_threshold: int
    behaviour_rules: int = Field(description="How many behaviour rules it has.")
    fit_rules: int = Field(description="How many fit rules it has.")


class ScoringModelChanged(DomainEvent):
    """A tenant's scoring model has a new version: scores computed with an older one are
    re-scored in the background."""

    SOURCE: ClassVar[str] = "crm.scoring"
    DETAIL_TYPE: ClassVar[str] = "ScoringModelChanged"
    PRODUCER: ClassVar[str] = "scoring"

    data: ScoringModelChangedData
