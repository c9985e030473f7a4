"""A pipeline as the API takes it (crm_core/deals/pipeline_models.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from crm_core.deals.pipeline_models import (
    MAX_STAGES,
    ForecastCategory,
    PipelineBody,
    Stage,
    default_pipeline,
)


def body(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(default_pipeline()), **changes}


def stages(**by_id: dict[str, Any]) -> list[dict[str, Any]]:
    """The default pipeline's stages, some of them changed."""
    return [{**s, **by_id.get(s["id"], {})} for s in default_pipeline()["stages"]]


def test_the_default_pipeline_is_a_valid_one() -> None:
    pipeline = PipelineBody.model_validate(default_pipeline())
    assert [s.probability for s in pipeline.stages] == [10, 20, 50, 80, 100, 0]
    categories = [s.category for s in pipeline.stages]
    assert categories == [
        ForecastCategory.PIPELINE,
        ForecastCategory.PIPELINE,
        ForecastCategory.BEST_CASE,
        ForecastCategory.BEST_CASE,
        ForecastCategory.CLOSED,
        ForecastCategory.OMITTED,
    ]


def test_a_stage_may_name_its_forecast_category() -> None:
    stage = Stage(id="commit", name="Verbal yes", probability=70, forecast_category="commit")
    assert stage.category == ForecastCategory.COMMIT
    assert Stage(id="late", name="Contract", probability=95).category == ForecastCategory.COMMIT


@pytest.mark.parametrize(
    ("pipeline", "why"),
    [
        (body(stages=stages(won={"kind": "open", "probability": 90})), "exactly one won"),
        (body(stages=stages(lost={"kind": "won", "probability": 100})), "exactly one won"),
        (body(stages=stages(lost={"kind": "open"})), "at least one lost"),
        (body(stages=stages(won={"probability": 90})), "won stage has probability 100"),
        (body(stages=stages(lost={"probability": 5})), "lost stage has probability 0"),
        (body(stages=stages(won={"forecast_category": "commit"})), "closed forecast category"),
        (body(stages=stages(proposal={"forecast_category": "closed"})), "only the won stage"),
        (body(stages=stages(won={"rotting_days": 30})), "only an open stage can rot"),
        (body(stages=stages(proposal={"id": "qualification"})), "its own id"),
        (body(stages=stages(proposal={"name": "QUALIFICATION"})), "its own name"),
        (body(stages=stages(proposal={"probability": 101})), "less than or equal to 100"),
        (body(stages=stages(proposal={"probability": -1})), "greater than or equal to 0"),
        (body(stages=stages(proposal={"probability": 50.5})), "valid integer"),
        (body(stages=stages(proposal={"probability": "50"})), "valid integer"),
        (body(stages=stages(proposal={"kind": "maybe"})), "'open', 'won' or 'lost'"),
        (body(stages=stages(proposal={"rotting_days": 0})), "greater than or equal to 1"),
        (body(stages=stages(proposal={"id": "Has Spaces"})), "pattern"),
        (body(stages=stages(proposal={"color": "red"})), "Extra inputs"),
        (body(name=" "), "pattern"),
        (body(stages=[]), "at least 2"),
    ],
)
def test_what_a_pipeline_cannot_be_is_refused(pipeline: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        PipelineBody.model_validate(pipeline)


def test_a_pipeline_has_at_most_100_stages() -> None:
    opens = [{"id": f"s{n}", "name": f"Stage {n}", "probability": 10} for n in range(98)]
    closed = default_pipeline()["stages"][-2:]
    assert len(PipelineBody.model_validate(body(stages=opens + closed)).stages) == MAX_STAGES
    one_more = [*opens, {"id": "s98", "name": "Stage 98", "probability": 10}, *closed]
    with pytest.raises(ValidationError, match="at most 100"):
        PipelineBody.model_validate(body(stages=one_more))
