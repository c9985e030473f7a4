"""A tenant's sales pipeline as the API takes it: stages in order, each with a probability
(0 to 100), a kind (open, won, lost), optional rotting days and a forecast category
(Salesforce's: pipeline, best case, commit, closed, omitted). PRODUCT.md, "Deals and
pipelines"; docs/decisions.md, 79."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, WHOLE, Name, PatchBody, field_error

MAX_STAGES = 100
StageId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Probability = Annotated[int, Field(ge=0, le=100, strict=True), WHOLE]
RottingDays = Annotated[int, Field(ge=1, le=3650, strict=True), WHOLE]


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ForecastCategory(StrEnum):
    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"  # won deals
    OMITTED = "omitted"  # lost deals, and open ones a manager leaves out


# What a closed stage must say: a won deal is certain and counted as closed, a lost one is
# worth nothing and left out of the forecast.
_CLOSED = {
    StageKind.WON: (100, ForecastCategory.CLOSED),
    StageKind.LOST: (0, ForecastCategory.OMITTED),
}


class Stage(BaseModel):
    model_config = INPUT_MODEL

    id: StageId
    name: Name
    probability: Probability
    kind: StageKind = StageKind.OPEN
    rotting_days: RottingDays | None = None
    forecast_category: ForecastCategory | None = None  # None: from the kind and probability

    @model_validator(mode="after")
    def _closed_stages_are_certain(self) -> Stage:
        closed = _CLOSED.get(self.kind)
        if closed is not None:
            probability, category = closed
            if self.probability != probability:
                raise ValueError(f"a {self.kind} stage has probability {probability}")
            if self.forecast_category not in (None, category):
                raise ValueError(f"a {self.kind} stage is in the {category} forecast category")
            if self.rotting_days is not None:
                raise ValueError("only an open stage can rot")
        elif self.forecast_category == ForecastCategory.CLOSED:
            raise ValueError("only the won stage is in the closed forecast category")
        return self

    @property
    def category(self) -> ForecastCategory:
        """The forecast category: as set, else the closed stages' own, else by probability
        (90 and above commit, 50 and above best case, below that pipeline)."""
        if self.forecast_category is not None:
            return self.forecast_category
        closed = _CLOSED.get(self.kind)
        if closed is not None:
            return closed[1]
        if self.probability >= 90:
            return ForecastCategory.COMMIT
        if self.probability >= 50:
            return ForecastCategory.BEST_CASE
        return ForecastCategory.PIPELINE


Stages = Annotated[list[Stage], Field(min_length=2, max_length=MAX_STAGES)]


class PipelineBody(BaseModel):
    """`POST /pipelines` and the stages of a `PATCH`: stage order is list order."""

    model_config = INPUT_MODEL

    name: Name
    stages: Stages

    @model_validator(mode="after")
    def _one_won_and_a_lost(self) -> PipelineBody:
        check_stages("PipelineBody", self.stages)
        return self


class PipelinePatch(PatchBody):
    """PATCH /pipelines/{id}: a new name, or the whole list of stages (a stage kept keeps its
    id; one left out is removed, which a stage holding deals refuses)."""

    name: Name | None = None
    stages: Stages | None = None

    NOT_NULL = ("name", "stages")

    @model_validator(mode="after")
    def _stages(self) -> PipelinePatch:
        if self.stages is not None:
            check_stages("PipelinePatch", self.stages)
        return self


def check_stages(model: str, stages: list[Stage]) -> None:
    kinds = [s.kind for s in stages]
    ids = [s.id for s in stages]
    names = [s.name.casefold() for s in stages]
    message = None
    if kinds.count(StageKind.WON) != 1:
        message = "a pipeline has exactly one won stage"
    elif StageKind.LOST not in kinds:
        message = "a pipeline has at least one lost stage"
    elif StageKind.OPEN not in kinds:
        message = "a pipeline has at least one open stage"
    elif len(set(ids)) != len(ids):
        message = "each stage has its own id"
    elif len(set(names)) != len(names):
        message = "each stage has its own name"
    if message:
        raise field_error(model, ("stages",), message, ids)


def stored_stages(stages: list[Stage]) -> list[dict[str, Any]]:
    """The stages as kept and shown: every forecast category resolved."""
    return [
        {
            "id": s.id,
            "name": s.name,
            "probability": s.probability,
            "kind": s.kind.value,
            "rotting_days": s.rotting_days,
            "forecast_category": s.category.value,
        }
        for s in stages
    ]


class StageOut(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    name: str
    probability: int
    kind: str
    rotting_days: int | None = None
    forecast_category: str


class Pipeline(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    name: str
    default: bool = Field(description="The pipeline a deal without `pipeline_id` is in.")
    stages: list[StageOut]
    version: int = Field(description="0 for the default pipeline until it is changed.")
    created_at: str | None = None
    updated_at: str | None = None


class PipelinePage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Pipeline]
    next_cursor: str | None


def default_pipeline() -> dict[str, Any]:
    """The pipeline every tenant has without creating one, as a `PipelineBody` takes it
    (the stages of Salesforce's default sales process, shortened)."""
    stages = [
        ("qualification", "Qualification", 10, StageKind.OPEN),
        ("needs-analysis", "Needs analysis", 20, StageKind.OPEN),
        ("proposal", "Proposal", 50, StageKind.OPEN),
        ("negotiation", "Negotiation", 80, StageKind.OPEN),
        ("won", "Closed won", 100, StageKind.WON),
        ("lost", "Closed lost", 0, StageKind.LOST),
    ]
    return {
        "name": "Sales",
        "stages": [
            {"id": i, "name": n, "probability": p, "kind": k.value} for i, n, p, k in stages
        ],
    }
