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


class RulePoints(BaseModel):
    model_config = EVENT_MODEL

    rule_id: str
    points: float = Field(description="What the rule gave in this change (behaviour: as earned).")


class ScoreCause(BaseModel):
    model_config = EVENT_MODEL

    detail_type: str = Field(description="The event that changed the score, or `Rescored`.")
    event_id: str | None = Field(default=None, description="That event's metadata.event_id.")
    activity_id: str | None = None
    activity_type: str | None = None


class LeadScoreChangedData(BaseModel):
    model_config = EVENT_MODEL

    contact_id: str
    old_score: float = Field(description="The score just before the change (decayed to then).")
    new_score: float
    fit: int = Field(description="The part of the new score that does not decay.")
    engagement: float = Field(description="The part that decays, at the change's time.")
    model_version: int
    reasons: list[RulePoints] = Field(description="The rules behind the change.")
    cause: ScoreCause


class LeadScoreChanged(DomainEvent):
    """A contact's score changed: an activity or a profile change met a rule of the model,
    or a re-score rebuilt it."""

    SOURCE: ClassVar[str] = "crm.scoring"
    DETAIL_TYPE: ClassVar[str] = "LeadScoreChanged"
    PRODUCER: ClassVar[str] = "lead_scoring"

    data: LeadScoreChangedData


class LeadQualifiedData(BaseModel):
    model_config = EVENT_MODEL

    contact_id: str
    threshold: str = Field(description="mql or sql: the highest threshold crossed.")
    threshold_score: int
    score: float
    model_version: int
    lifecycle_stage_before: str
    lifecycle_stage_after: str = Field(
        description="The stage now: moved forward, or as it was (a later stage, or a person's "
        "change made after the event)."
    )


class LeadQualified(DomainEvent):
    """A contact's score rose across the model's mql or sql threshold (once per crossing)."""

    SOURCE: ClassVar[str] = "crm.scoring"
    DETAIL_TYPE: ClassVar[str] = "LeadQualified"
    PRODUCER: ClassVar[str] = "lead_scoring"

    data: LeadQualifiedData


class ScoringJobProgressedData(BaseModel):
    model_config = EVENT_MODEL

    job_id: str
    model_version: int
    status: str = Field(description="running (the next run picks it up), done or superseded.")
    contacts_seen: int
    contacts_rescored: int


class ScoringJobProgressed(DomainEvent):
    """A re-score job ended a run: finished, superseded by a newer model, or paused with
    its cursor saved (`running`), for the next run to resume it."""

    SOURCE: ClassVar[str] = "crm.scoring"
    DETAIL_TYPE: ClassVar[str] = "ScoringJobProgressed"
    PRODUCER: ClassVar[str] = "lead_scoring"

    data: ScoringJobProgressedData
