"""A tenant's deal settings: the reasons a deal may be lost (a list of its own, plus free
text on each deal). `GET/PUT /settings/deals`; until a tenant sets its list, the default one
(`records.deal.LOST_REASONS`). A reason taken out of the list stays on the deals that have
it; only new losses are held to the list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.deals.versions import later_of
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, Name, field_error
from crm_core.records.deal import LOST_REASONS, ReasonCode
from crm_core.table import Table, TransactionCancelled, read_modify_write

DEAL_SETTINGS_ITEM = "deal_settings"
MAX_LOST_REASONS = 50
_LABELS = {
    "price": "Price",
    "competitor": "Went with a competitor",
    "no_budget": "No budget",
    "no_decision": "No decision",
    "timing": "Timing",
    "fit": "Not a fit",
    "other": "Other",
}


class LostReasonChoice(BaseModel):
    model_config = INPUT_MODEL
    code: ReasonCode
    label: Name


class DealSettingsBody(BaseModel):
    """`PUT /settings/deals`: the tenant's lost reasons, in the order a form shows them."""

    model_config = INPUT_MODEL
    lost_reasons: Annotated[
        list[LostReasonChoice], Field(min_length=1, max_length=MAX_LOST_REASONS)
    ]

    @model_validator(mode="after")
    def _codes(self) -> DealSettingsBody:
        codes = [r.code for r in self.lost_reasons]
        if len(set(codes)) != len(codes):
            raise field_error(
                "DealSettingsBody", ("lost_reasons",), "each reason has its own code", codes
            )
        return self


class LostReasonOut(BaseModel):
    model_config = OUTPUT_MODEL
    code: str
    label: str


class DealSettings(BaseModel):
    model_config = OUTPUT_MODEL
    lost_reasons: list[LostReasonOut]
    version: int = Field(description="0 until the tenant sets them.")
    updated_at: str | None = None


def default_reasons() -> list[dict[str, str]]:
    return [{"code": code, "label": _LABELS[code]} for code in LOST_REASONS]


def to_settings(item: Item | None) -> DealSettings:
    if item is None:
        return DealSettings.model_validate({"lost_reasons": default_reasons(), "version": 0})
    return DealSettings.model_validate(
        {k: item.get(k) for k in ("lost_reasons", "version", "updated_at")}
    )


class DealSettingsStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    def item(self, tenant_id: str) -> Item | None:
        return self.table.get(keys.deal_settings(tenant_id))

    def lost_reasons(self, tenant_id: str) -> list[str]:
        return [r.code for r in to_settings(self.item(tenant_id)).lost_reasons]

    def replace(
        self, tenant_id: str, body: DealSettingsBody, expected: int | None, origin: Origin
    ) -> DealSettings:
        def attempt() -> DealSettings:
            old = self.item(tenant_id)
            version = 0 if old is None else int(old["version"])
            if expected is not None and expected != version:
                raise PreconditionFailed(f"the settings are at version {version}, not {expected}")
            new: dict[str, Any] = {
                **keys.deal_settings(tenant_id),
                "type": DEAL_SETTINGS_ITEM,
                "tenant_id": tenant_id,
                "lost_reasons": [r.model_dump() for r in body.lost_reasons],
                "version": version + 1,
                "updated_at": later_of(self.clock(), old and old.get("updated_at")),
                "updated_by": origin.actor.id,
            }
            condition = "attribute_not_exists(PK)" if old is None else "version = :v"
            values = {} if old is None else {"v": version}
            try:
                self.table.transact([self.op.put(new, condition, **values)])
            except TransactionCancelled:
                raise ConcurrentChange("the deal settings changed meanwhile") from None
            return to_settings(new)

        return read_modify_write(attempt, "deal settings")
