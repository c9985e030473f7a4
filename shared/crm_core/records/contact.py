"""The contact as clients send it and as the API returns it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_core import normalize
from crm_core.fields import (
    INPUT_MODEL,
    OUTPUT_MODEL,
    Attributes,
    Country,
    Email,
    Name,
    PatchBody,
    Phone,
    Tags,
    Title,
    Ulid,
    UserId,
)
from crm_core.records.deal_totals import DealTotals


class LifecycleStage(StrEnum):
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    EVANGELIST = "evangelist"
    OTHER = "other"


class EmailConsent(StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    UNKNOWN = "unknown"


class ContactCreate(BaseModel):
    """POST /contacts. Server-owned fields (id, score, timestamps, version) are refused."""

    # An email or a phone, as the schema says too.
    model_config = ConfigDict(
        **INPUT_MODEL,
        json_schema_extra={
            "anyOf": [
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
            ]
        },
    )

    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone | None = None
    title: Title | None = None
    company_id: Ulid | None = None
    owner_id: UserId | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.LEAD
    tags: Tags = Field(default_factory=list)
    country: Country | None = None
    attributes: Attributes = Field(default_factory=dict)
    email_consent: EmailConsent = EmailConsent.UNKNOWN

    @model_validator(mode="after")
    def _reachable(self) -> ContactCreate:
        if self.email is None and self.phone is None:
            raise ValueError("a contact needs an email or a phone")
        if self.phone is not None:
            self.phone = normalize.phone(self.phone, self.country)
        return self


class ContactPatch(PatchBody):
    """PATCH /contacts/{id}: the fields sent are changed; null clears an optional field.

    `attributes` merges like RFC 7396: keys sent are set, a null value removes the key.
    """

    NOT_NULL = ("lifecycle_stage", "email_consent")

    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone | None = None
    title: Title | None = None
    company_id: Ulid | None = None
    owner_id: UserId | None = None
    lifecycle_stage: LifecycleStage | None = None
    tags: Tags | None = None
    country: Country | None = None
    attributes: Attributes | None = None
    email_consent: EmailConsent | None = None

    @model_validator(mode="after")
    def _phone(self) -> ContactPatch:
        if self.phone is not None:
            self.phone = normalize.phone(self.phone, self.country)
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class MergeRequest(BaseModel):
    model_config = INPUT_MODEL

    from_id: Ulid


class ConsentSource(BaseModel):
    """The evidence of the person's own opt-in: the signed lead that carried their consent."""

    model_config = OUTPUT_MODEL

    lead_id: str = Field(description="The lead whose submission gave the consent.")
    source_id: str = Field(description="The lead source that delivered it, signed.")
    at: str = Field(description="When the lead was received.")


class Contact(BaseModel):
    """A stored contact, as every read and write returns it."""

    model_config = OUTPUT_MODEL

    id: str
    email: str | None = None
    other_emails: list[str] = Field(
        default_factory=list, description="Addresses of contacts merged into this one."
    )
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    company_id: str | None = None
    owner_id: str | None = None
    lifecycle_stage: LifecycleStage
    tags: list[str]
    country: str | None = None
    attributes: dict[str, Any]
    email_consent: EmailConsent
    consent_source: ConsentSource | None = Field(
        default=None,
        description=(
            "The person's latest opt-in (a lead with consent). Only such an opt-in subscribes "
            "a contact who unsubscribed: the API cannot."
        ),
    )
    score: float
    attribution: dict[str, Any] | None = Field(
        default=None,
        description="First- and last-touch attribution: lead source and UTM fields",
    )
    last_activity_at: str | None = Field(
        default=None, description="When the latest activity on the contact happened."
    )
    activity_counts: dict[str, int] = Field(
        default_factory=dict, description="How many activities of each type it has."
    )
    created_at: str
    updated_at: str
    version: int


class ContactWithDeals(Contact):
    """A contact's page (GET /contacts/{id}): the contact and its deals in short."""

    deals: DealTotals = Field(
        description=(
            "How many open and won deals it takes part in, and the won amounts; kept with "
            "each deal's change (zeros and no amounts when it has none)."
        )
    )


class ContactPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Contact]
    next_cursor: str | None
