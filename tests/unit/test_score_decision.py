"""The scorer's decision (crm_core/scoring/decision.py), without moto: what a new score means
for the contact, before anything is written."""

from __future__ import annotations

import copy
from typing import Any

from crm_core.scores.state import ScoreState
from crm_core.scoring.decision import ScoreDecision, decide
from crm_core.scoring.models import DEFAULT_MODEL, ScoringModel
from crm_core.scoring.rules import Earned

NOW = 1_773_144_000.0  # 2026-03-10T12:00:00Z
AT = "2026-03-10T12:00:00.000Z"
EVENT_TIME = "2026-03-10T11:59:59.000Z"


VP = {"id": "vp", "field": "title", "operator": "contains", "value": "VP", "points": 45}


def model(*more_fit: dict[str, Any]) -> ScoringModel:
    """Thresholds mql 40, sql 80 (the default model's); 45 points of fit for a VP."""
    body = copy.deepcopy(DEFAULT_MODEL)
    body["fit"] = [VP, *more_fit]
    return ScoringModel.model_validate({**body, "version": 3, "is_default": False})


def contact(stage: str = "lead", **more: Any) -> dict[str, Any]:
    base = {"tenant_id": "t", "id": "c1", "title": "VP Sales", "lifecycle_stage": stage}
    return {**base, "version": 7, **more}


UNSCORED = ScoreState()
VP_FIT = ScoreState(fit=45, fit_rules={"vp": 45}, model_version=3)  # what the model gives


def scored(item: dict[str, Any], scoring: ScoringModel, **kw: Any) -> ScoreDecision:
    """The decision for a contact never scored that now has the VP fit (0 -> 45)."""
    reasons = [Earned("vp", 45)]
    return decide(item, UNSCORED, VP_FIT, scoring, reasons, now=NOW, at=AT, **kw)


def test_a_rise_across_mql_promotes_a_lead_and_says_so() -> None:
    decision = scored(contact(), model(), event_time=EVENT_TIME)

    assert (decision.old_score, decision.new_score) == (0, 45)
    assert (decision.qualified, decision.stage_before, decision.stage_after) == (
        "mql",
        "lead",
        "mql",
    )
    assert decision.moved
    assert decision.promoted
    assert decision.item["lifecycle_stage"] == "mql"
    assert (decision.item["version"], decision.item["updated_at"]) == (8, AT)
    # The state to store: the next sequence number, this model, this time, in the item too.
    state = decision.state
    assert (state.seq, state.model_version, state.updated_at) == (1, 3, AT)
    assert decision.item["scoring"] == state.attribute()
    assert decision.reasons == [Earned("vp", 45)]


def test_a_stage_a_person_set_with_or_after_the_event_is_not_overruled() -> None:
    chosen = contact(stage_changed_at=EVENT_TIME)  # the very edit being scored

    decision = scored(chosen, model(), event_time=EVENT_TIME)

    assert decision.qualified == "mql"  # the crossing is still news (LeadQualified)
    assert not decision.promoted
    assert decision.item["lifecycle_stage"] == "lead"
    assert decision.item["version"] == 7  # the contact's own fields are left as they were
    earlier = contact(stage_changed_at="2026-03-01T00:00:00.000Z")
    assert scored(earlier, model(), event_time=EVENT_TIME).promoted


def test_a_promotion_that_changes_the_fit_can_cross_sql_as_well() -> None:
    # Being qualified is worth 40 points: the move to mql carries the score past sql (80).
    qualified = {
        "id": "qualified",
        "field": "lifecycle_stage",
        "operator": "in",
        "value": ["mql", "sql"],
        "points": 40,
    }

    decision = scored(contact(), model(qualified), event_time=EVENT_TIME)

    assert decision.new_score == 85
    assert (decision.qualified, decision.stage_after) == ("sql", "sql")
    assert decision.reasons == [Earned("vp", 45), Earned("qualified", 40)]
    assert decision.state.fit_rules == {"vp": 45, "qualified": 40}
    assert decision.item["scoring"]["fit"] == 85


def test_no_change_of_score_is_not_a_move_and_a_customer_is_never_moved() -> None:
    same = decide(contact(), VP_FIT, VP_FIT, model(), [], now=NOW, at=AT, event_time=None)
    assert (same.moved, same.promoted, same.qualified) == (False, False, None)
    assert same.state.seq == 1  # the state is still written (its model version, say)

    customer = scored(contact(stage="customer"), model(), event_time=None)
    assert (customer.qualified, customer.stage_after) == ("mql", "customer")
    assert not customer.promoted
