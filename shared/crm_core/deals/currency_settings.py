"""A tenant's base currency and exchange rates, with every earlier version: open deals
convert at the rates of the moment asked about, closed ones at the rates of their closing.
`PUT /settings/currencies`; PRODUCT.md, "Deals and pipelines"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema, model_validator

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.currencies import MoneyError, parse_rate
from crm_core.deals.versions import later_of, version_at
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL, field_error
from crm_core.records.deal import Currency
from crm_core.table import Table, TransactionCancelled, read_modify_write

DEFAULT_BASE = "USD"
MAX_RATES = 200
CURRENCY_SETTINGS_ITEM = "currency_settings"
RateText = Annotated[
    str,
    Field(strict=True, max_length=40),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$",
            "description": "Units of the base currency one unit is worth: above 0, at most "
            "12 significant digits.",
        }
    ),
]


class CurrencySettingsBody(BaseModel):
    """`PUT /settings/currencies`: the base currency, and what one unit of each other
    currency is worth in it."""

    model_config = INPUT_MODEL

    base: Currency
    rates: Annotated[dict[Currency, RateText], Field(max_length=MAX_RATES)] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _rates(self) -> CurrencySettingsBody:
        model = "CurrencySettingsBody"
        if self.base in self.rates:
            message = "the base currency has no rate (it is 1)"
            raise field_error(model, ("rates", self.base), message, self.rates[self.base])
        for currency, text in self.rates.items():
            try:
                rate = parse_rate(text)
            except MoneyError as error:
                raise field_error(model, ("rates", currency), str(error), text) from None
            self.rates[currency] = f"{rate:f}"
        return self


class CurrencySettings(BaseModel):
    model_config = OUTPUT_MODEL
    base: str
    rates: dict[str, str]
    version: int = Field(description="0 until the tenant sets its currencies.")
    updated_at: str | None = None


@dataclass(frozen=True)
class Rates:
    """The rates in force at one moment, as numbers."""

    base: str
    rates: dict[str, Decimal] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def from_item(cls, item: Item | None) -> Rates:
        if item is None:
            return cls(DEFAULT_BASE)
        rates = {c: Decimal(r) for c, r in item["rates"].items()}
        return cls(item["base"], rates, int(item["version"]))

    def rate(self, currency: str) -> Decimal | None:
        return Decimal(1) if currency == self.base else self.rates.get(currency)


def to_settings(item: Item | None) -> CurrencySettings:
    if item is None:
        return CurrencySettings(base=DEFAULT_BASE, rates={}, version=0)
    return CurrencySettings.model_validate(
        {k: item.get(k) for k in ("base", "rates", "version", "updated_at")}
    )


class CurrencyStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    def item(self, tenant_id: str) -> Item | None:
        return self.table.get(keys.currency_settings(tenant_id))

    def current(self, tenant_id: str) -> Rates:
        return Rates.from_item(self.item(tenant_id))

    def as_of(self, tenant_id: str, at: str) -> Rates:
        partition = keys.currency_settings(tenant_id)["PK"]
        return Rates.from_item(version_at(self.table, partition, keys.VERSION_PREFIX, at))

    def replace(
        self, tenant_id: str, body: CurrencySettingsBody, expected: int | None, origin: Origin
    ) -> CurrencySettings:
        def attempt() -> CurrencySettings:
            old = self.item(tenant_id)
            version = 0 if old is None else int(old["version"])
            if expected is not None and expected != version:
                raise PreconditionFailed(f"the settings are at version {version}, not {expected}")
            at = later_of(self.clock(), old and old.get("updated_at"))
            new: dict[str, Any] = {
                "type": CURRENCY_SETTINGS_ITEM,
                "tenant_id": tenant_id,
                "base": body.base,
                "rates": dict(body.rates),
                "version": version + 1,
                "updated_at": at,
                "updated_by": origin.actor.id,
            }
            condition = "attribute_not_exists(PK)" if old is None else "version = :v"
            values = {} if old is None else {"v": version}
            ops = [
                self.op.put({**keys.currency_settings(tenant_id), **new}, condition, **values),
                self.op.put(
                    {**keys.currency_settings_version(tenant_id, at, version + 1), **new},
                    "attribute_not_exists(PK)",
                ),
            ]
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                raise ConcurrentChange("the currency settings changed meanwhile") from None
            return to_settings(new)

        return read_modify_write(attempt, "currency settings")
