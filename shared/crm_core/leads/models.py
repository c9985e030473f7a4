"""Lead sources and deliveries as clients send them and as the API returns them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    PatchBody,
    Tags,
    UserId,
)

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
ATTRIBUTE_TARGET = r"attributes\.[A-Za-z][A-Za-z0-9_]{0,63}"
MAX_PATH_SEGMENTS = 8
MAX_FIELD_MAP = 50
# A field map's keys and values, as patterns the JSON schema states and the code applies: a
# lead field or `attributes.<name>`, and a dotted path into the payload (names of letters,
# digits, _ - and spaces, and list indexes; at most 8 parts).
FIELD_MAP_TARGET = "^(" + "|".join(LEAD_FIELDS) + "|" + ATTRIBUTE_TARGET + ")$"
_SEGMENT = "[A-Za-z0-9_\\- ]{1,64}"
FIELD_MAP_PATH = f"^{_SEGMENT}(\\.{_SEGMENT}){{0,{MAX_PATH_SEGMENTS - 1}}}$"

FieldMap = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=FIELD_MAP_TARGET)],
        Annotated[str, StringConstraints(pattern=FIELD_MAP_PATH)],
    ],
    Field(
        max_length=MAX_FIELD_MAP,
        description=(
            'Lead field -> dotted path into the payload, e.g. {"email": "contact.email"}: a '
            f"field of {', '.join(LEAD_FIELDS)}, or attributes.<name>. Fields not mapped are "
            "looked up under their common names."
        ),
        json_schema_extra={"additionalProperties": False},
    ),
]
SourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK), STRIPPED
]


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


class LeadSourcePatch(PatchBody):
    """PATCH /lead-sources/{id}: the fields sent are changed; null clears the owner."""

    NOT_NULL = ("name", "field_map", "default_tags")

    name: SourceName | None = None
    field_map: FieldMap | None = None
    default_tags: Tags | None = None
    default_owner_id: UserId | None = None

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
