"""What a scoring model makes of an activity or a contact: pure functions, no I/O.

`earn` adds one activity's points to a score (rules matched, caps applied, decay kept at
the reference time); `fit_of` evaluates the fit rules on a contact's item. The scorer and
the rebuild from history both use these, so an event and a rebuild count alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crm_core.scores import decay
from crm_core.scores.state import CAP_DAYS_KEPT, ScoreState
from crm_core.scoring.models import BehaviourRule, FitRule, Operator, ScoringModel


@dataclass(frozen=True)
class Activity:
    """The facts of an activity a behaviour rule can test."""

    id: str
    contact_id: str
    type: str
    occurred_at: str
    created_at: str | None = None
    direction: str | None = None
    outcome: str | None = None
    status: str | None = None
    campaign_id: str | None = None
    url: str | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Activity:
        """From an ActivityLogged event's facts, or an activity item (`activity_type`)."""
        return cls(
            id=str(values["id"]),
            contact_id=str(values["contact_id"]),
            created_at=values.get("created_at"),
            # An item's `type` is its kind ("activity"); its activity's type is activity_type.
            type=str(values.get("activity_type") or values["type"]),
            occurred_at=str(values["occurred_at"]),
            direction=values.get("direction"),
            outcome=values.get("outcome"),
            status=values.get("status"),
            campaign_id=values.get("campaign_id"),
            url=values.get("url"),
        )

    @property
    def epoch(self) -> float:
        return epoch_of(self.occurred_at)

    @property
    def created_epoch(self) -> float:
        return epoch_of(self.created_at or self.occurred_at)


@dataclass(frozen=True)
class Earned:
    rule_id: str
    points: int


def epoch_of(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def matches(rule: BehaviourRule, activity: Activity) -> bool:
    if rule.activity_type.value != activity.type:
        return False
    c = rule.conditions
    if c.direction is not None and c.direction != activity.direction:
        return False
    if c.outcome is not None and c.outcome != activity.outcome:
        return False
    if c.status is not None and c.status != activity.status:
        return False
    if c.campaign_id is not None and c.campaign_id != activity.campaign_id:
        return False
    return c.url_contains is None or c.url_contains.lower() in (activity.url or "").lower()


def earn(
    state: ScoreState, model: ScoringModel, activity: Activity, now: float
) -> tuple[ScoreState, list[Earned]]:
    """`state` plus what `activity` earns under `model` (caps applied): the new state and
    the points each rule gave (nothing matched: the same state and an empty list).

    Points count from when the activity happened, but never from the future (a meeting
    logged ahead of its time counts as of now)."""
    at = min(activity.epoch, now)
    day = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d")
    engagement, behaviour, caps = state.engagement, dict(state.behaviour), dict(state.caps)
    earned: list[Earned] = []
    for rule in model.behaviour:
        if not matches(rule, activity):
            continue
        points = rule.points
        if rule.cap_per_day or rule.cap_total:
            cap = caps.get(rule.id) or {"total": 0, "days": {}}
            days = dict(cap.get("days") or {})
            if rule.cap_per_day:
                points = min(points, rule.cap_per_day - int(days.get(day, 0)))
            if rule.cap_total:
                points = min(points, rule.cap_total - int(cap.get("total", 0)))
            if points <= 0:
                continue
            days[day] = int(days.get(day, 0)) + points
            # The newest days, and always the day just counted: late activities of an old
            # day (a provider's backlog) are then capped together, as a rebuild caps them.
            others = sorted(d for d in days if d != day)[-(CAP_DAYS_KEPT - 1) :]
            kept = {d: days[d] for d in sorted([*others, day])}
            caps[rule.id] = {"total": int(cap.get("total", 0)) + points, "days": kept}
        half_life = model.half_life_days
        engagement = decay.add(engagement, points, at, half_life)
        behaviour[rule.id] = decay.add(behaviour.get(rule.id, decay.NONE), points, at, half_life)
        earned.append(Earned(rule.id, points))
    if not earned:
        return state, []
    return (
        state.next(
            engagement=engagement,
            half_life_days=model.half_life_days,
            behaviour=behaviour,
            caps=caps,
        ),
        earned,
    )


# Fit -------------------------------------------------------------------------------------
def fit_of(model: ScoringModel, item: Mapping[str, Any]) -> dict[str, int]:
    """The fit rules that hold for the contact, with their points."""
    return {rule.id: rule.points for rule in model.fit if holds(rule, item)}


def holds(rule: FitRule, item: Mapping[str, Any]) -> bool:
    value = field_value(item, rule.field)
    values = value if isinstance(value, list) else [value]
    present = [v for v in values if v is not None and v != ""]
    if rule.operator == Operator.EXISTS:
        return bool(present)
    return any(_compare(rule, v) for v in present)


def field_value(item: Mapping[str, Any], name: str) -> Any:
    if name.startswith("attributes."):
        return (item.get("attributes") or {}).get(name.removeprefix("attributes."))
    if name == "email_domain":
        email = item.get("email") or ""
        return email.rpartition("@")[2] or None
    return item.get(name)


def _compare(rule: FitRule, value: Any) -> bool:
    wanted = rule.value
    if rule.operator in (Operator.GTE, Operator.LTE):
        number = _number(value)
        if number is None or not isinstance(wanted, int | float):
            return False
        return number >= wanted if rule.operator == Operator.GTE else number <= wanted
    if rule.operator == Operator.CONTAINS:
        return isinstance(value, str) and str(wanted).lower() in value.lower()
    options: Iterable[Any] = wanted if isinstance(wanted, list) else [wanted]
    return any(_same(value, option) for option in options)


def _same(value: Any, option: Any) -> bool:
    if isinstance(value, str) and isinstance(option, str):
        return value.casefold() == option.casefold()
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return bool(value == option)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
