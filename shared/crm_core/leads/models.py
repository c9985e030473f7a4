"""Lead sources and deliveries as clients send them and as the API returns them."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, Tags, UserId, check_patch

# The fields a lead can fill. `attributes.<name>` maps into a contact's custom attributes.
LEAD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "company",
    "title",
    "country",
    "tags",
    "external_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "page_url",
    "referrer",
    # The person's consent to email: a yes subscribes them (even after an unsubscribe).
    "email_consent",
)
ATTRIBUTE_TARGET = re.compile(r"^attributes\.[A-Za-z][A-Za-z0-9_]{0,63}$")
# A dotted path into the payload: names (letters, digits, _ - and spaces) and list indexes.
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_\- ]{1,64}$")
MAX_PATH_SEGMENTS = 8
MAX_FIELD_MAP = 50


def _field_map(values: dict[str, str]) -> dict[str, str]:
    for target, path in values.items():
        if target not in LEAD_FIELDS and not ATTRIBUTE_TARGET.match(target):
            raise ValueError(
                f"{target[:70]!r} is not a lead field: use one of {', '.join(LEAD_FIELDS)}, "
                "or attributes.<name>"
            )
        segments = path.split(".")
        if len(segments) > MAX_PATH_SEGMENTS or not all(PATH_SEGMENT.match(s) for s in segments):
            raise ValueError(
                f"{target}: {path[:70]!r} is not a dotted path such as 'contact.email' or "
                f"'answers.0.value' (at most {MAX_PATH_SEGMENTS} parts)"
            )
    return values


FieldMap = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=80)],
        Annotated[str, StringConstraints(min_length=1, max_length=300)],
    ],
    Field(
        max_length=MAX_FIELD_MAP,
        description=(
            'Lead field -> dotted path into the payload, e.g. {"email": "contact.email"}. '
            "Fields not mapped are looked up under their common names."
        ),
    ),
    AfterValidator(_field_map),
]
SourceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class SourceStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class LeadStatus(StrEnum):
    ACCEPTED = "accepted"  # stored, waiting for the lead processor
    PROCESSED = "processed"  # a contact was created or updated, and the submission logged
    REJECTED = "rejected"  # kept, but it cannot become a contact: see `reason`
    FAILED = "failed"  # the last attempt failed unexpectedly; it is retried


class LeadSourceCreate(BaseModel):
    """POST /lead-sources."""

    model_config = INPUT_MODEL

    name: SourceName
    field_map: FieldMap = Field(default_factory=dict)
    default_tags: Tags = Field(default_factory=list)
    default_owner_id: UserId | None = None


class LeadSourcePatch(BaseModel):
    """PATCH /lead-sources/{id}: the fields sent are changed; null clears the owner."""

    model_config = INPUT_MODEL

    name: SourceName | None = None
    field_map: FieldMap | None = None
    default_tags: Tags | None = None
    default_owner_id: UserId | None = None

    @model_validator(mode="after")
    def _sensible(self) -> LeadSourcePatch:
        check_patch(self, ("name", "field_map", "default_tags"))
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class LeadSource(BaseModel):
    model_config = OUTPUT_MODEL

    id: str
    name: str
    status: SourceStatus
    webhook_path: str = Field(description="Where the source posts its leads, signed.")
    field_map: dict[str, str]
    default_tags: list[str]
    default_owner_id: str | None = None
    secret_rotated_at: str | None = None
    previous_secret_expires_at: str | None = Field(
        default=None, description="Until then the secret before the last rotation still works."
    )
    disabled_at: str | None = None
    created_at: str
    updated_at: str
    version: int


class LeadSourceWithSecret(LeadSource):
    """The answer to a create or a rotation: the only time the secret is shown."""

    secret: str | None = Field(
        description=(
            "The signing secret, shown once. Null in a replay of the same Idempotency-Key: "
            "rotate the secret if the first answer was lost."
        )
    )


class LeadSourcePage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[LeadSource]
    next_cursor: str | None


class Delivery(BaseModel):
    """One webhook delivery and what became of it."""

    model_config = OUTPUT_MODEL

    lead_id: str
    source_id: str
    received_at: str
    status: LeadStatus
    reason: str | None = Field(
        default=None,
        description="Why it was rejected or failed; for a processed lead, what was dropped.",
    )
    contact_id: str | None = None
    activity_id: str | None = Field(default=None, description="Its form_submission activity.")
    external_id: str | None = None
    content_type: str
    size_bytes: int
    processed_at: str | None = None
    updated_at: str


class DeliveryDetail(Delivery):
    payload: str = Field(description="The body exactly as received.")


class DeliveryPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Delivery]
    next_cursor: str | None
