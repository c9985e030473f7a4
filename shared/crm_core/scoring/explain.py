"""GET /contacts/{id}/score: a contact's score now, what it is made of, and how it moved.

Three reads whatever the contact's history: its last changes (one Query of the change
records in its partition, newest first), then its item (the score's parts), then the model
version that made it (thresholds, and what each rule says).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from crm_core import keys
from crm_core.contacts.items import load_contact
from crm_core.errors import NotFound
from crm_core.events.scoring import RulePoints, ScoreCause
from crm_core.fields import OUTPUT_MODEL
from crm_core.pagination import ListQuery
from crm_core.scores.state import ScoreState
from crm_core.scoring.models import BehaviourRule, FitRule, ScoringModel, Thresholds
from crm_core.scoring.store import ModelStore, default_model
from crm_core.table import Table

CHANGES_SHOWN = 50
TOP_RULES = 10


class RuleContribution(BaseModel):
    model_config = OUTPUT_MODEL

    rule_id: str
    kind: Literal["behaviour", "fit"]
    points: float = Field(description="What the rule adds to the score now (behaviour: decayed).")
    says: str = Field(description="The rule, in words.")


class ScoreChange(BaseModel):
    model_config = OUTPUT_MODEL

    at: str
    old_score: float
    new_score: float
    fit: int
    engagement: float
    model_version: int
    reasons: list[RulePoints]
    cause: ScoreCause
    lifecycle_stage: str | None = Field(
        default=None, description="The stage the change moved the contact to, if it did."
    )


class ContactScore(BaseModel):
    model_config = OUTPUT_MODEL

    contact_id: str
    score: float = Field(description="fit + engagement, now.")
    fit: int = Field(description="Points for what the contact is; they do not decay.")
    engagement: float = Field(description="Points for what the contact did, decayed to now.")
    half_life_days: float | None = Field(description="Of the engagement (None: none yet).")
    model_version: int | None = Field(description="The model version behind the score.")
    thresholds: Thresholds
    lifecycle_stage: str
    computed_at: str = Field(description="The moment the score and its parts are given at.")
    updated_at: str | None = Field(description="When the score last changed.")
    top_rules: list[RuleContribution] = Field(
        description=f"The {TOP_RULES} rules that weigh most in the score now, either way."
    )
    changes: list[ScoreChange] = Field(description=f"The last {CHANGES_SHOWN}, newest first.")


def explain(
    table: Table, tenant_id: str, contact_id: str, clock: Callable[[], float] = time.time
) -> ContactScore:
    # The changes first, then the contact: a change listed is always in the score shown (a
    # change made between the two reads is in the score, and listed on the next read).
    listing = ListQuery("score-changes", keys.contact(tenant_id, contact_id)["PK"])
    page = table.query(listing, CHANGES_SHOWN, None, sort_prefix=keys.SCORE_CHANGE_PREFIX)
    item = load_contact(table, tenant_id, contact_id, then="/score")
    state = ScoreState.of(item)
    model = _model(table, tenant_id, state.model_version)
    now = clock()
    rules: dict[str, BehaviourRule | FitRule] = {r.id: r for r in model.behaviour}
    rules.update({r.id: r for r in model.fit})
    contributions = [
        RuleContribution(
            rule_id=rule_id,
            kind="fit" if rule_id in state.fit_rules else "behaviour",
            points=round(points, 2),
            says=_says(rules.get(rule_id)),
        )
        for rule_id, points in state.rule_points_at(now).items()
    ]
    contributions.sort(key=lambda c: (-abs(c.points), c.rule_id))
    return ContactScore(
        contact_id=contact_id,
        score=round(state.total_at(now), 2),
        fit=state.fit,
        engagement=round(state.engagement_at(now), 2),
        half_life_days=state.half_life_days or None,
        model_version=state.model_version if state.scored else None,
        thresholds=model.thresholds,
        lifecycle_stage=item["lifecycle_stage"],
        computed_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        + f".{int(now % 1 * 1000):03d}Z",
        updated_at=state.updated_at,
        top_rules=contributions[:TOP_RULES],
        # Keyed by the event that caused them (a replay finds its record): the 50 newest
        # causes, shown in the order they were applied.
        changes=sorted((_change(i) for i in page.items), key=lambda c: c.at, reverse=True),
    )


def _change(item: dict[str, Any]) -> ScoreChange:
    return ScoreChange.model_validate({k: item[k] for k in ScoreChange.model_fields if k in item})


def _model(table: Table, tenant_id: str, version: int) -> ScoringModel:
    store = ModelStore(table)
    if version < 0:
        return store.current(tenant_id)
    try:
        return store.version(tenant_id, version)
    except NotFound:
        return default_model()


def _says(rule: BehaviourRule | FitRule | None) -> str:
    if rule is None:
        return "a rule of an earlier model"
    if isinstance(rule, FitRule):
        value = "" if rule.value is None else f" {rule.value!r}"
        return f"{rule.field} {rule.operator.value}{value}: {rule.points:+d}"
    conditions = ", ".join(
        f"{k} {v}" for k, v in rule.conditions.model_dump(exclude_none=True).items()
    )
    caps = [f"at most {rule.cap_per_day} a day"] if rule.cap_per_day else []
    caps += [f"at most {rule.cap_total} in all"] if rule.cap_total else []
    parts = [f"each {rule.activity_type.value}" + (f" ({conditions})" if conditions else "")]
    return f"{parts[0]}: {rule.points:+d}" + (f", {', '.join(caps)}" if caps else "")
