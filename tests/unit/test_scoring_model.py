"""The scoring model's validation: what PUT /scoring/model will accept and refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from crm_core.scoring.models import DEFAULT_MODEL, MAX_RULES, ScoringModelInput


def model(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DEFAULT_MODEL), **changes}


def behaviour(**fields: Any) -> dict[str, Any]:
    return {"id": "r", "activity_type": "call", "points": 5, **fields}


def fit(**fields: Any) -> dict[str, Any]:
    return {"id": "f", "field": "title", "operator": "exists", "points": 5, **fields}


def test_the_default_model_is_valid() -> None:
    parsed = ScoringModelInput.model_validate(DEFAULT_MODEL)
    assert parsed.thresholds.mql < parsed.thresholds.sql
    assert {r.activity_type for r in parsed.behaviour} >= {"form_submission", "meeting"}


@pytest.mark.parametrize(
    "rule",
    [
        behaviour(conditions={"outcome": "connected"}),
        behaviour(activity_type="meeting", conditions={"outcome": "completed"}),
        behaviour(activity_type="email", conditions={"direction": "inbound"}),
        behaviour(activity_type="task", conditions={"status": "completed"}),
        behaviour(activity_type="email_clicked", conditions={"url_contains": "pricing"}),
        behaviour(activity_type="email_opened", cap_per_day=3, cap_total=30),
        behaviour(activity_type="unsubscribed", points=-25),
    ],
)
def test_sensible_behaviour_rules(rule: dict[str, Any]) -> None:
    ScoringModelInput.model_validate(model(behaviour=[rule]))


@pytest.mark.parametrize(
    "rule",
    [
        fit(),
        fit(operator="contains", value="VP"),
        fit(field="country", operator="in", value=["US", "CA"]),
        fit(field="attributes.seats", operator="gte", value=50),
        fit(field="attributes.budget", operator="lte", value=9.5),
        fit(field="lifecycle_stage", operator="eq", value="lead", points=-5),
    ],
)
def test_sensible_fit_rules(rule: dict[str, Any]) -> None:
    ScoringModelInput.model_validate(model(fit=[rule]))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"behaviour": [behaviour(points=0)]}, "0 points"),
        ({"behaviour": [behaviour(points=1001)]}, "less than or equal"),
        ({"behaviour": [behaviour(points="5")]}, "valid integer"),
        ({"behaviour": [behaviour(activity_type="fax")]}, "Input should be"),
        ({"behaviour": [behaviour(conditions={"outcome": "completed"})]}, "outcome is one of"),
        ({"behaviour": [behaviour(conditions={"colour": "red"})]}, "Extra inputs"),
        (
            {"behaviour": [behaviour(activity_type="note", conditions={"outcome": "x"})]},
            "no outcome",
        ),
        ({"behaviour": [behaviour(conditions={"url_contains": "x"})]}, "no url_contains"),
        ({"behaviour": [behaviour(points=-5, cap_per_day=3)]}, "takes points"),
        ({"behaviour": [behaviour(cap_per_day=10, cap_total=5)]}, "cannot exceed"),
        ({"behaviour": [behaviour(id="Bad Id")]}, "should match pattern"),
        ({"behaviour": [behaviour(), behaviour()]}, "repeated: r"),
        ({"behaviour": [behaviour(id=f"r{n}") for n in range(MAX_RULES + 1)]}, "at most 100"),
        ({"fit": [fit(field="password")]}, "should match pattern"),
        ({"fit": [fit(value="x")]}, "no value"),
        ({"fit": [fit(operator="in", value="US")]}, "a list"),
        ({"fit": [fit(operator="in", value=[])]}, "a list"),
        ({"fit": [fit(operator="gte", value="50")]}, "a number"),
        ({"fit": [fit(operator="gte", value=True)]}, "a number"),
        ({"fit": [fit(operator="contains", value=5)]}, "a text"),
        ({"fit": [fit(operator="eq")]}, "one value"),
        ({"fit": [fit(operator="regex", value=".*")]}, "Input should be"),
        ({"thresholds": {"mql": 80, "sql": 40}}, "above the mql"),
        ({"thresholds": {"mql": 0, "sql": 40}}, "greater than or equal"),
        ({"half_life_days": 0}, "greater than or equal"),
        ({"half_life_days": float("nan")}, "finite"),
        ({"version": 3}, "Extra inputs"),
    ],
)
def test_bad_models_are_refused_with_a_reason(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ScoringModelInput.model_validate(model(**changes))
    assert says in str(refused.value)


def test_a_model_needs_its_half_life_and_thresholds() -> None:
    for missing in ("half_life_days", "thresholds"):
        body = model()
        del body[missing]
        with pytest.raises(ValidationError):
            ScoringModelInput.model_validate(body)
