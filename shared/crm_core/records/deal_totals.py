"""A contact's or a company's deals in short, as its page shows them: how many open, how many
won, and the won amounts per base currency of their closings.

The deal store keeps one summary item per contact and per company (`keys.contact_deal_summary`,
`keys.company_deal_summary`), ADDing to it in each deal's own transaction
(crm_core/deals/summaries.py decides what); this module is the item's form, for its writer and
its readers alike. Its numbers are exact sums: read them exactly (`Table.get(..., exact=True)`),
a float would round money.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from crm_core.currencies import format_amount
from crm_core.fields import OUTPUT_MODEL

SUMMARY_ITEM = "deal_summary"
# Top-level numbers, so that a transaction can ADD to them.
OPEN = "open"
WON = "won"
WON_AMOUNT_PREFIX = "won|"


def won_amount_attribute(base: str) -> str:
    """The attribute that sums the won deals closed in the base currency `base`."""
    return f"{WON_AMOUNT_PREFIX}{base}"


class DealTotals(BaseModel):
    model_config = OUTPUT_MODEL

    open: int = Field(description="How many open deals it takes part in.")
    won: int = Field(description="How many won deals it takes part in.")
    won_amount: dict[str, str] = Field(
        description=(
            "The won deals' amounts, summed per base currency of their closing (each deal at "
            "the rate of its closing), as decimal strings with that currency's minor digits."
        )
    )


def deal_totals(item: Mapping[str, Any] | None) -> DealTotals:
    """The totals a summary item holds (None: no deal ever counted there)."""
    item = item or {}
    won_amount = {
        name.removeprefix(WON_AMOUNT_PREFIX): format_amount(
            Decimal(str(value)), name.removeprefix(WON_AMOUNT_PREFIX)
        )
        for name, value in sorted(item.items())
        if name.startswith(WON_AMOUNT_PREFIX) and value
    }
    return DealTotals(open=int(item.get(OPEN, 0)), won=int(item.get(WON, 0)), won_amount=won_amount)
