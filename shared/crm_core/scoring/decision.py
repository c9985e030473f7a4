"""What a new score means for the contact, decided without I/O: the threshold it crosses,
the stage it moves the contact to (which can change the fit, hence the score, once more),
the state and the contact item to store. `Scorer` (scorer.py) reads, asks this, and writes
what it decided in one transaction; the rules here are unit-tested without moto."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from crm_core.dynamo import Item
from crm_core.scores.state import ScoreState
from crm_core.scoring.models import ScoringModel
from crm_core.scoring.rules import Earned, fit_of

# Stages scoring may move a contact out of, and the order it moves them in.
_FORWARD = {"subscriber": 0, "lead": 1, "mql": 2, "sql": 3}
# A score change smaller than this is not a change (float noise of the decay arithmetic).
EPSILON = 1e-6


@dataclass(frozen=True)
class ScoreDecision:
    """The contact before and after one scoring, at one moment (`now`)."""

    old_score: float
    new_score: float
    state: ScoreState  # to store: the next sequence number, this model, this time
    item: Item  # the contact as it will be stored (stage, `scoring` attribute, version)
    reasons: list[Earned]  # the rules behind the change, fit changes of a promotion too
    qualified: str | None  # the threshold crossed upward (mql, sql), if any
    stage_before: str
    stage_after: str
    engagement: float  # the engagement part of new_score

    @property
    def moved(self) -> bool:
        """The score changed (a first fit of 0, or a rule rebuilt to the same points, does
        not: then only the state is written)."""
        return abs(self.new_score - self.old_score) > EPSILON

    @property
    def promoted(self) -> bool:
        return self.stage_after != self.stage_before


def decide(
    item: Item,
    state: ScoreState,
    new_state: ScoreState,
    model: ScoringModel,
    reasons: list[Earned],
    *,
    now: float,
    at: str,
    event_time: str | None,
) -> ScoreDecision:
    """The contact `item` (scored as `state`) after `new_state`: promoted over a threshold
    it crosses unless a person chose its stage with or after the event (`event_time`); `at`
    is the time written on what changes."""
    old_score, new_score = state.total_at(now), new_state.total_at(now)
    stage = str(item["lifecycle_stage"])
    new_item, qualified = dict(item), None
    # A move of stage can change the fit (a rule on lifecycle_stage), hence the score,
    # which can cross the next threshold: at most mql, then sql.
    for _ in range(2):
        crossing = crossed(model, old_score, new_score)
        if crossing is None or crossing == qualified:
            break
        qualified = crossing
        if not may_promote(new_item, crossing, event_time):
            break
        new_item.update(lifecycle_stage=crossing, updated_at=at, version=item["version"] + 1)
        fit_rules = fit_of(model, new_item)
        if fit_rules == dict(new_state.fit_rules):
            break
        reasons = reasons + fit_changes(new_state.fit_rules, fit_rules)
        new_state = replace(new_state, fit=sum(fit_rules.values()), fit_rules=fit_rules)
        new_score = new_state.total_at(now)
    new_state = new_state.next(model_version=model.version, updated_at=at)
    new_item["scoring"] = new_state.attribute()
    return ScoreDecision(
        old_score=old_score,
        new_score=new_score,
        state=new_state,
        item=new_item,
        reasons=reasons,
        qualified=qualified,
        stage_before=stage,
        stage_after=str(new_item["lifecycle_stage"]),
        engagement=new_state.engagement_at(now),
    )


def fit_changes(before: Mapping[str, int], after: Mapping[str, int]) -> list[Earned]:
    """The fit rules that started or stopped holding, with the points they add or take."""
    changes = [Earned(k, v) for k, v in after.items() if before.get(k) != v]
    return changes + [Earned(k, -v) for k, v in before.items() if k not in after]


def crossed(model: ScoringModel, old: float, new: float) -> str | None:
    """The highest threshold the score rose across (reaching it counts), if any. Scores
    are compared as people see them, to 2 decimals: a 39.9999 shown as 40 has reached 40."""
    old, new = round(old, 2), round(new, 2)
    for name in ("sql", "mql"):
        threshold = getattr(model.thresholds, name)
        if old < threshold <= new:
            return name
    return None


def may_promote(item: Item, target: str, event_time: str | None) -> bool:
    """Forward only, from subscriber, lead or mql; never over a person's change of stage
    made with or after the event (a person's choice wins)."""
    stage = item["lifecycle_stage"]
    if stage not in _FORWARD or _FORWARD[stage] >= _FORWARD[target]:
        return False
    changed_by_person = item.get("stage_changed_at")
    # At the event's own time too: the edit that set the stage is the one being scored.
    return not (changed_by_person and event_time and changed_by_person >= event_time)
