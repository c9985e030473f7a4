"""A tenant's scoring model, as `PUT /scoring/model` takes it (issue 7).

Behaviour rules give points for activities (decaying with the model's half-life); fit
rules give points for what a contact is (not decaying); thresholds say when a lead becomes
an MQL and an SQL. Every rule has an id, so a score's breakdown can name what produced it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crm_core.activities.models import (
    ActivityType,
    CallOutcome,
    Direction,
    MeetingOutcome,
    TaskStatus,
)
from crm_core.fields import INPUT_MODEL, MAX_SAFE_INTEGER, OUTPUT_MODEL, WHOLE, Storable
from crm_core.scores.decay import MAX_HALF_LIFE, MIN_HALF_LIFE

MAX_RULES = 100
MAX_POINTS = 1000
MAX_IN_VALUES = 100
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# Never 0 (a rule of 0 points does nothing), as the schema says too.
Points = Annotated[
    int,
    Field(ge=-MAX_POINTS, le=MAX_POINTS, strict=True, json_schema_extra={"not": {"const": 0}}),
    WHOLE,
]
Scalar = (
    Annotated[str, StringConstraints(min_length=1, max_length=200)]
    | Annotated[int, Field(strict=True, ge=-(2**53), le=2**53)]
    # A number DynamoDB can store (1e-300 it refuses), as attribute values are.
    | Annotated[float, Field(strict=True), Storable(float(MAX_SAFE_INTEGER))]
    | bool
)
# The contact fields a fit rule may test; `attributes.<name>` tests a custom attribute.
FIT_FIELDS = (
    "title",
    "country",
    "lifecycle_stage",
    "tags",
    "company_id",
    "owner_id",
    "email_consent",
    "email_domain",
    "first_name",
    "last_name",
)
FIT_FIELD_PATTERN = "^(" + "|".join(FIT_FIELDS) + "|attributes\\.[A-Za-z][A-Za-z0-9_]{0,63})$"
_EMAIL_EVENTS = {
    ActivityType.EMAIL_DELIVERED,
    ActivityType.EMAIL_OPENED,
    ActivityType.EMAIL_CLICKED,
    ActivityType.EMAIL_BOUNCED,
}
# Which condition applies to which activity types, and the values it may take (None: any).
# A condition an activity can never meet would be a rule that silently never counts.
_CONDITIONS: dict[str, tuple[set[ActivityType], frozenset[str] | None]] = {
    "direction": ({ActivityType.CALL, ActivityType.EMAIL}, frozenset(Direction)),
    "outcome": (
        {ActivityType.CALL, ActivityType.MEETING},
        frozenset(CallOutcome) | frozenset(MeetingOutcome),
    ),
    "status": ({ActivityType.TASK}, frozenset(TaskStatus)),
    "campaign_id": (_EMAIL_EVENTS | {ActivityType.UNSUBSCRIBED}, None),
    "url_contains": ({ActivityType.EMAIL_CLICKED}, None),
}
_OUTCOMES = {
    ActivityType.CALL: frozenset(CallOutcome),
    ActivityType.MEETING: frozenset(MeetingOutcome),
}


class Conditions(BaseModel):
    """What an activity must also be for a behaviour rule to count it (all must hold)."""

    model_config = INPUT_MODEL

    direction: Annotated[str, StringConstraints(max_length=20)] | None = None
    outcome: Annotated[str, StringConstraints(max_length=40)] | None = None
    status: Annotated[str, StringConstraints(max_length=20)] | None = None
    campaign_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    url_contains: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class BehaviourRule(BaseModel):
    """`points` for each activity of `activity_type` meeting `conditions`; at most
    `cap_per_day` points a day and `cap_total` in all from this rule (per contact)."""

    model_config = INPUT_MODEL

    id: RuleId
    activity_type: ActivityType
    conditions: Conditions = Field(default_factory=Conditions)
    points: Points
    cap_per_day: Annotated[int, Field(ge=1, le=100 * MAX_POINTS, strict=True), WHOLE] | None = None
    cap_total: Annotated[int, Field(ge=1, le=100 * MAX_POINTS, strict=True), WHOLE] | None = None

    @model_validator(mode="after")
    def _sensible(self) -> BehaviourRule:
        if self.points == 0:
            raise ValueError("a rule of 0 points does nothing")
        for name, value in self.conditions.model_dump(exclude_none=True).items():
            types, allowed = _CONDITIONS[name]
            if self.activity_type not in types:
                raise ValueError(f"a {self.activity_type.value} has no {name} to test")
            allowed = _OUTCOMES.get(self.activity_type, allowed) if name == "outcome" else allowed
            if allowed is not None and value not in allowed:
                raise ValueError(f"{name} is one of {', '.join(sorted(allowed))}, not {value!r}")
        if (self.cap_per_day or self.cap_total) and self.points < 0:
            raise ValueError("caps bound points earned: a rule that takes points has none")
        if self.cap_per_day and self.cap_total and self.cap_per_day > self.cap_total:
            raise ValueError("cap_per_day cannot exceed cap_total")
        return self


class Operator(StrEnum):
    EQ = "eq"
    IN = "in"
    CONTAINS = "contains"
    EXISTS = "exists"
    GTE = "gte"
    LTE = "lte"


def _value_for(operator: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {"operator": {"const": operator}}},
        "then": {"properties": {"value": schema}},
    }


_SCALAR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}


class FitRule(BaseModel):
    """`points` while the contact's `field` satisfies `operator` `value` (e.g. title
    contains "VP": +10). `exists` takes no value; `in` a list; `gte`/`lte` a number."""

    # Which value each operator takes, as the schema says too.
    model_config = ConfigDict(
        **INPUT_MODEL,
        json_schema_extra={
            "allOf": [
                _value_for("exists", {"type": "null"}),
                _value_for("in", {"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES}),
                _value_for("gte", {"type": "number"}),
                _value_for("lte", {"type": "number"}),
                _value_for("contains", {"type": "string"}),
                _value_for("eq", _SCALAR),
                {
                    "if": {
                        "properties": {"operator": {"enum": ["in", "gte", "lte", "contains", "eq"]}}
                    },
                    "then": {"required": ["value"]},
                },
            ]
        },
    )

    id: RuleId
    field: Annotated[str, StringConstraints(pattern=FIT_FIELD_PATTERN)] = Field(
        description="A contact field, or attributes.<name>."
    )
    operator: Operator
    value: Scalar | list[Scalar] | None = None
    points: Points

    @model_validator(mode="after")
    def _value_fits_operator(self) -> FitRule:
        if self.points == 0:
            raise ValueError("a rule of 0 points does nothing")
        value = self.value
        if self.operator == Operator.EXISTS:
            if value is not None:
                raise ValueError("`exists` takes no value")
        elif self.operator == Operator.IN:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
                raise ValueError(f"`in` takes a list of 1 to {MAX_IN_VALUES} values")
        elif self.operator in (Operator.GTE, Operator.LTE):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"`{self.operator.value}` takes a number")
        elif self.operator == Operator.CONTAINS:
            if not isinstance(value, str):
                raise ValueError("`contains` takes a text")
        elif value is None or isinstance(value, list):
            raise ValueError("`eq` takes one value")
        return self


class Thresholds(BaseModel):
    model_config = INPUT_MODEL

    mql: Annotated[int, Field(ge=1, le=100 * MAX_POINTS, strict=True), WHOLE]
    sql: Annotated[int, Field(ge=1, le=100 * MAX_POINTS, strict=True), WHOLE]

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.sql <= self.mql:
            raise ValueError("the sql threshold must be above the mql threshold")
        return self


class ScoringModelInput(BaseModel):
    """PUT /scoring/model: the whole model (a new version of it)."""

    model_config = INPUT_MODEL

    behaviour: list[BehaviourRule] = Field(default_factory=list, max_length=MAX_RULES)
    fit: list[FitRule] = Field(default_factory=list, max_length=MAX_RULES)
    half_life_days: Annotated[float, Field(ge=MIN_HALF_LIFE, le=MAX_HALF_LIFE, allow_inf_nan=False)]
    thresholds: Thresholds

    @model_validator(mode="after")
    def _unique_ids(self) -> ScoringModelInput:
        ids = [r.id for r in self.behaviour] + [r.id for r in self.fit]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(repeated)}")
        return self


class ScoringModel(ScoringModelInput):
    """A version of a tenant's model, as the API returns it."""

    model_config = OUTPUT_MODEL

    version: int = Field(description="0 is the default model, before any PUT.")
    is_default: bool
    updated_at: str | None = None
    updated_by: str | None = None


# What a tenant scores with until an admin or marketer says otherwise: engagement that
# signals buying intent counts most, fades with a 30-day half-life, and fit adds a little.
DEFAULT_MODEL: dict[str, Any] = {
    "behaviour": [
        {"id": "form-submitted", "activity_type": "form_submission", "points": 15},
        {
            "id": "meeting-booked",
            "activity_type": "meeting",
            "conditions": {"outcome": "scheduled"},
            "points": 15,
        },
        {
            "id": "meeting-held",
            "activity_type": "meeting",
            "conditions": {"outcome": "completed"},
            "points": 25,
        },
        {
            "id": "call-connected",
            "activity_type": "call",
            "conditions": {"outcome": "connected"},
            "points": 10,
        },
        {
            "id": "email-replied",
            "activity_type": "email",
            "conditions": {"direction": "inbound"},
            "points": 8,
        },
        {"id": "email-opened", "activity_type": "email_opened", "points": 1, "cap_per_day": 3},
        {"id": "email-clicked", "activity_type": "email_clicked", "points": 5, "cap_per_day": 15},
        {
            "id": "pricing-clicked",
            "activity_type": "email_clicked",
            "conditions": {"url_contains": "pricing"},
            "points": 10,
            "cap_per_day": 10,
        },
        {"id": "email-bounced", "activity_type": "email_bounced", "points": -10},
        {"id": "unsubscribed", "activity_type": "unsubscribed", "points": -25},
    ],
    "fit": [
        {"id": "has-title", "field": "title", "operator": "exists", "points": 2},
        {
            "id": "senior-title",
            "field": "title",
            "operator": "contains",
            "value": "VP",
            "points": 10,
        },
        {"id": "has-company", "field": "company_id", "operator": "exists", "points": 5},
    ],
    "half_life_days": 30,
    "thresholds": {"mql": 40, "sql": 80},
}
