"""A deal as clients send it and as the API returns it. PRODUCT.md, "Deals and pipelines".

Amounts are decimal strings with at most the currency's minor digits (never JSON numbers:
a float cannot say 0.10); a close date is a calendar date (`2027-03-31`), not a moment.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from crm_core.currencies import MINOR_DIGITS, MoneyError, format_amount, parse_amount
from crm_core.fields import (
    INPUT_MODEL,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    Attributes,
    PatchBody,
    Ulid,
    UserId,
    field_error,
)

MAX_DEAL_CONTACTS = 20
DEFAULT_PIPELINE = "default"
PIPELINE_ID_PATTERN = r"^(default|[0-9A-HJKMNP-TV-Z]{26})$"
PipelineId = Annotated[str, StringConstraints(pattern=PIPELINE_ID_PATTERN)]
StageRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
DealName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), STRIPPED
]
Role = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=NOT_BLANK), STRIPPED]
NextStep = Annotated[
    str, StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK), STRIPPED
]
LostNote = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, pattern=NOT_BLANK), STRIPPED
]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# The reasons a deal is lost until a tenant sets its own (/settings/deals), as sales teams
# commonly report them; `other` wants the note.
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "fit", "other")


def _currency(value: str) -> str:
    if value not in MINOR_DIGITS:
        raise ValueError(f"{value[:8]!r} is not an ISO 4217 currency code a deal can be in")
    return value


def _close_date(value: str) -> str:
    if not _DATE.fullmatch(value):
        raise ValueError("a close date is a calendar date, YYYY-MM-DD (no time)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a date") from None
    if not 2000 <= day.year <= 2999:
        raise ValueError("a close date is in the years 2000 to 2999")
    return value


# The schemas say the forms (a client held to the document is never refused for one); what
# they cannot say (a calendar's days, an amount's digits for its currency) the code checks.
Currency = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(MINOR_DIGITS)}),
]
CloseDate = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_close_date),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
            "description": "A calendar date, YYYY-MM-DD, in the years 2000 to 2999.",
        }
    ),
]
# The amount's own checks need its currency: `_money` in the models below.
AmountText = Annotated[
    str,
    Field(strict=True, max_length=40),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$",
            "description": "A decimal string, at most the currency's minor digits after the "
            "point (2 for EUR, 0 for JPY, 3 for KWD).",
        }
    ),
]


class DealContact(BaseModel):
    model_config = INPUT_MODEL

    contact_id: Ulid
    role: Role | None = None
    primary: bool = Field(default=False, strict=True)


class LostReason(BaseModel):
    model_config = INPUT_MODEL

    reason: ReasonCode = Field(description="One of the tenant's lost reasons (/settings/deals).")
    note: LostNote | None = Field(default=None, description="Free text.")

    @model_validator(mode="after")
    def _other_says_why(self) -> LostReason:
        if self.reason == "other" and self.note is None:
            raise ValueError("a lost reason of `other` needs a note")
        return self


Contacts = Annotated[list[DealContact], Field(max_length=MAX_DEAL_CONTACTS)]


def _check_contacts(model: str, contacts: list[DealContact] | None) -> None:
    if not contacts:
        return
    ids = [c.contact_id for c in contacts]
    message = None
    if len(set(ids)) != len(ids):
        message = "a contact takes part in a deal once"
    elif sum(c.primary for c in contacts) > 1:
        message = "a deal has at most one primary contact"
    if message:
        raise field_error(model, ("contacts",), message, ids)


def stored_contacts(contacts: list[DealContact]) -> list[dict[str, Any]]:
    """The contacts as kept: one of them primary (the first, if none was said)."""
    if not contacts:
        return []
    primary = next((c.contact_id for c in contacts if c.primary), contacts[0].contact_id)
    return [
        {"contact_id": c.contact_id, "role": c.role, "primary": c.contact_id == primary}
        for c in contacts
    ]


def _money(model: str, amount: str | None, currency: str | None) -> str | None:
    if amount is None or currency is None:
        return amount
    try:
        return format_amount(parse_amount(amount, currency), currency)
    except MoneyError as error:
        raise field_error(model, ("amount",), str(error), amount) from None


class DealCreate(BaseModel):
    model_config = INPUT_MODEL

    name: DealName
    pipeline_id: PipelineId = DEFAULT_PIPELINE
    stage_id: StageRef | None = Field(default=None, description="Default: the first stage.")
    amount: AmountText = Field(description='A decimal string, as "12500.00".')
    currency: Currency
    close_date: CloseDate
    owner_id: UserId | None = Field(default=None, description="Default: the caller.")
    company_id: Ulid | None = None
    contacts: Contacts = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    lost_reason: LostReason | None = None
    next_step: NextStep | None = None

    @model_validator(mode="after")
    def _rules(self) -> DealCreate:
        self.amount = _money("DealCreate", self.amount, self.currency) or self.amount
        _check_contacts("DealCreate", self.contacts)
        return self


class DealPatch(PatchBody):
    """PATCH /deals/{id}: sent fields change, null clears; attributes merge (RFC 7396). A
    new currency takes the amount sent with it, or the old amount if it fits."""

    name: DealName | None = None
    pipeline_id: PipelineId | None = None
    stage_id: StageRef | None = None
    amount: AmountText | None = None
    currency: Currency | None = None
    close_date: CloseDate | None = None
    owner_id: UserId | None = None
    company_id: Ulid | None = None
    contacts: Contacts | None = None
    attributes: Attributes | None = None
    lost_reason: LostReason | None = None
    next_step: NextStep | None = None

    NOT_NULL = ("name", "pipeline_id", "stage_id", "amount", "currency", "close_date")

    @model_validator(mode="after")
    def _rules(self) -> DealPatch:
        if self.pipeline_id is not None and self.stage_id is None:
            raise field_error(
                "DealPatch",
                ("stage_id",),
                "moving a deal to another pipeline names its stage there",
                None,
            )
        if self.amount is not None and self.currency is not None:
            self.amount = _money("DealPatch", self.amount, self.currency)
        _check_contacts("DealPatch", self.contacts)
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set)


class DealContactOut(BaseModel):
    model_config = OUTPUT_MODEL
    contact_id: str
    role: str | None = None
    primary: bool


class Closing(BaseModel):
    """How a closed deal counts in the base currency: at the rate of its closing."""

    model_config = OUTPUT_MODEL
    base: str
    rate: str
    amount: str = Field(description="The amount in the base currency, at that rate.")


class Deal(BaseModel):
    model_config = OUTPUT_MODEL
    id: str
    name: str
    pipeline_id: str
    stage_id: str
    status: str = Field(description="open, won or lost: the kind of its stage.")
    amount: str
    currency: str
    close_date: str
    owner_id: str | None = None
    company_id: str | None = None
    contacts: list[DealContactOut]
    attributes: dict[str, Any]
    lost_reason: dict[str, Any] | None = None
    next_step: str | None = None
    closing: Closing | None = None
    stage_entered_at: str
    closed_at: str | None = None
    last_activity_at: str | None = Field(default=None, description="Its latest activity.")
    close_date_pushes: int = Field(description="How often the close date moved later.")
    time_in_stages: dict[str, int] = Field(
        description="Seconds spent in each stage left so far (the current one not counted)."
    )
    created_at: str
    updated_at: str
    created_by: str
    version: int


class DealPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[Deal]
    next_cursor: str | None


class FieldChange(BaseModel):
    model_config = OUTPUT_MODEL
    field: str
    previous: Any = Field(description="The value before the change (null on creation).")
    value: Any = Field(description="The value after it (null on deletion).")


class HistoryEntry(BaseModel):
    model_config = OUTPUT_MODEL
    at: str
    version: int
    action: str = Field(description="created, updated or deleted.")
    actor: dict[str, Any] = Field(description="Who made the change: type and id.")
    changes: list[FieldChange]


class HistoryPage(BaseModel):
    model_config = OUTPUT_MODEL
    items: list[HistoryEntry]
    next_cursor: str | None
