"""Segments: a named filter of contacts, evaluated when it is used (issue 8).

A filter's conditions all hold for a contact in the segment. Each is checked on the
contact's item (`SegmentFilter.matches`); which index reads the candidates is the
audience's choice (`audience.py`), so a filter means the same whatever index serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from crm_core.clock import format_iso
from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    Country,
    PatchBody,
    Storable,
    Tags,
    Ulid,
    UserId,
    UtcDateTime,
)
from crm_core.records.contact import EmailConsent, LifecycleStage
from crm_core.scores.state import score_now

MAX_SCORE = 1e9
MAX_COUNTRIES = 250  # ISO 3166 has 249 codes
# Finite, and a magnitude DynamoDB stores (it refuses 1e-300: a 500 at creation).
Score = Annotated[float, Storable(MAX_SCORE)]
SegmentName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK), STRIPPED
]
Description = Annotated[str, StringConstraints(max_length=1000), STRIPPED]


def _once_each(values: list[Any]) -> list[Any]:
    """Each value once, where it first came: a repeated stage would only repeat the Queries
    of a preview or a send (8,000 of them for `["sql"] * 8000`)."""
    return list(dict.fromkeys(values))


# Each list at most as long as its domain (the schema's `maxItems`: the code takes exactly
# what the schema allows), kept once each.
Stages = Annotated[
    list[LifecycleStage],
    Field(min_length=1, max_length=len(LifecycleStage)),
    AfterValidator(_once_each),
]
Consents = Annotated[
    list[EmailConsent],
    Field(min_length=1, max_length=len(EmailConsent)),
    AfterValidator(_once_each),
]
Countries = Annotated[
    list[Country], Field(min_length=1, max_length=MAX_COUNTRIES), AfterValidator(_once_each)
]


class TagFilter(BaseModel):
    """Tags the contact has: at least one of `any`, every one of `all`, none of `none`."""

    # At least one of the three, as the schema says too.
    model_config = ConfigDict(
        **INPUT_MODEL,
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "array", "minItems": 1}}}
                for name in ("any", "all", "none")
            ]
        },
    )

    any: Tags | None = None
    all: Tags | None = None
    none: Tags | None = None

    @model_validator(mode="after")
    def _sensible(self) -> TagFilter:
        if not (self.any or self.all or self.none):
            raise ValueError("name tags in any, all or none")
        overlap = set(self.all or ()) & set(self.none or ())
        if overlap:
            raise ValueError(f"a tag cannot be in all and none: {', '.join(sorted(overlap))}")
        return self


class SegmentFilter(BaseModel):
    """Who is in a segment: every condition given holds (none given: every contact)."""

    model_config = INPUT_MODEL

    lifecycle_stage: Stages | None = None
    min_score: Score | None = Field(default=None, description="The score now, at least this.")
    max_score: Score | None = Field(default=None, description="The score now, at most this.")
    tags: TagFilter | None = None
    country: Countries | None = None
    company_id: Ulid | None = None
    owner_id: UserId | None = None
    created_after: UtcDateTime | None = None
    created_before: UtcDateTime | None = None
    last_activity_within_days: int | None = Field(default=None, ge=1, le=3650)
    email_consent: Consents | None = None

    @model_validator(mode="after")
    def _sensible(self) -> SegmentFilter:
        low, high = self.min_score, self.max_score
        if low is not None and high is not None and low > high:
            raise ValueError("min_score is above max_score: nobody would be in it")
        after, before = self.created_after, self.created_before
        if after and before and after >= before:
            raise ValueError("created_after is not before created_before")
        return self

    def matches(self, item: Mapping[str, Any], now: float) -> bool:
        """Whether the contact (its item) is in the segment at `now` (epoch seconds)."""
        if self.lifecycle_stage and item.get("lifecycle_stage") not in self.lifecycle_stage:
            return False
        if self.min_score is not None or self.max_score is not None:
            score = score_now(item, now)
            if self.min_score is not None and score < self.min_score:
                return False
            if self.max_score is not None and score > self.max_score:
                return False
        if self.tags is not None and not _tags_match(self.tags, set(item.get("tags") or ())):
            return False
        if self.country and item.get("country") not in self.country:
            return False
        if self.company_id and item.get("company_id") != self.company_id:
            return False
        if self.owner_id and item.get("owner_id") != self.owner_id:
            return False
        created = str(item.get("created_at") or "")
        if self.created_after and not created > format_iso(self.created_after):
            return False
        if self.created_before and not created < format_iso(self.created_before):
            return False
        if self.last_activity_within_days is not None:
            since = datetime.fromtimestamp(now, UTC) - timedelta(
                days=self.last_activity_within_days
            )
            last = item.get("last_activity_at")
            if not last or last < format_iso(since):
                return False
        consent = item.get("email_consent", EmailConsent.UNKNOWN.value)
        return not (self.email_consent and consent not in self.email_consent)


def _tags_match(rule: TagFilter, tags: set[str]) -> bool:
    if rule.any and not tags & set(rule.any):
        return False
    if rule.all and not set(rule.all) <= tags:
        return False
    return not (rule.none and tags & set(rule.none))


class SegmentCreate(BaseModel):
    """POST /segments."""

    model_config = INPUT_MODEL

    name: SegmentName
    description: Description | None = None
    filter: SegmentFilter = Field(default_factory=SegmentFilter)


class SegmentPatch(PatchBody):
    """PATCH /segments/{id}: the fields sent are replaced (a filter as a whole)."""

    NOT_NULL = ("name", "filter")

    name: SegmentName | None = None
    description: Description | None = None
    filter: SegmentFilter | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set, exclude_none=False)


class Segment(BaseModel):
    model_config = OUTPUT_MODEL

    id: str
    name: str
    description: str | None = None
    filter: dict[str, Any] = Field(description="As given (see SegmentFilter).")
    created_at: str
    updated_at: str
    created_by: str
    version: int


class SegmentPage(BaseModel):
    model_config = OUTPUT_MODEL

    items: list[Segment]
    next_cursor: str | None


class SegmentPreview(BaseModel):
    model_config = OUTPUT_MODEL

    count: int = Field(description="Contacts in the segment now (complete: every one counted).")
    complete: bool = Field(
        description="False when the count stopped at the read budget (50,000 contacts) or"
        " the time budget (5 s): at least `count`."
    )
    sample: list[dict[str, Any]] = Field(description="The first 10 contacts found.")
    index: str = Field(description="What read the candidates (docs/data-model.md).")
    contacts_read: int = Field(description="Candidates read to answer.")
