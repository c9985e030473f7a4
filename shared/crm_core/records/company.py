"""The company as clients send it and as the API returns it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from crm_core import normalize
from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    WHOLE,
    Attributes,
    Country,
    Domain,
    PatchBody,
    Phone,
    Tags,
    UserId,
)
from crm_core.records.deal_totals import DealTotals

CompanyName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), STRIPPED
]
Industry = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK), STRIPPED
]
EmployeeCount = Annotated[int, Field(strict=True, ge=0, le=10_000_000), WHOLE]


class CompanyCreate(BaseModel):
    model_config = INPUT_MODEL

    name: CompanyName
    domain: Domain | None = None
    industry: Industry | None = None
    employee_count: EmployeeCount | None = None
    phone: Phone | None = None
    country: Country | None = None
    owner_id: UserId | None = None
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)

    @model_validator(mode="after")
    def _phone(self) -> CompanyCreate:
        if self.phone is not None:
            self.phone = normalize.phone(self.phone, self.country)
        return self


class CompanyPatch(PatchBody):
    """PATCH /companies/{id}: sent fields change, null clears; attributes merge (RFC 7396)."""

    name: CompanyName | None = None
    domain: Domain | None = None
    industry: Industry | None = None
    employee_count: EmployeeCount | None = None
    phone: Phone | None = None
    country: Country | None = None
    owner_id: UserId | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None

    NOT_NULL = ("name",)

    @model_validator(mode="after")
    def _rules(self) -> CompanyPatch:
        if self.phone is not None:
            self.phone = normalize.phone(self.phone, self.country)
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class Company(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    name: str
    domain: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    phone: str | None = None
    country: str | None = None
    owner_id: str | None = None
    tags: list[str]
    attributes: dict[str, Any]
    contact_count: int = 0
    created_at: str
    updated_at: str
    version: int


class CompanyWithDeals(Company):
    """A company's page (GET /companies/{id}): the company and its deals in short."""

    deals: DealTotals = Field(
        description=(
            "How many of its deals are open and won, and the won amounts; kept with each "
            "deal's change (zeros and no amounts when it has none)."
        )
    )


class CompanyPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Company]
    next_cursor: str | None
