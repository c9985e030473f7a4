"""What one change of a deal does to the deal summaries of its contacts and its company (how
many open and won deals each takes part in, and the won amounts per base currency): a pure
function, written by the deal store as ADDs in the deal's own transaction.

A deal contributes to each of its contacts and to its company: an open deal 1 to `open`; a
won deal 1 to `won` and its amount in the base currency of its closing, exact, at the rate
of its closing (`bookkeeping.closing_amount`), to `won|<base>`; a lost deal nothing. A change
takes the old state's contribution away from the old holders and adds the new state's to
the new ones, so a deal that changes status, amount, currency, contacts or company moves its
contribution, and one that changes nothing of these touches no summary. The item's form:
crm_core/records/deal_totals.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from crm_core.currencies import exact
from crm_core.deals.bookkeeping import closing_amount
from crm_core.records.deal_totals import OPEN, WON, won_amount_attribute

HolderKind = Literal["contact", "company"]
# Whose summary: ("contact", <contact id>) or ("company", <company id>).
Holder = tuple[HolderKind, str]


def contribution(deal: Mapping[str, Any] | None) -> dict[str, Decimal]:
    """What a deal in this state adds to the summary of each of its contacts and its company."""
    if deal is None:
        return {}
    if deal["status"] == "open":
        return {OPEN: Decimal(1)}
    if deal["status"] == "won":
        base = deal["closing"]["base"]
        return {WON: Decimal(1), won_amount_attribute(base): closing_amount(deal)}
    return {}


def holders(deal: Mapping[str, Any] | None) -> list[Holder]:
    """The summaries a deal counts in: each of its contacts', and its company's."""
    if deal is None:
        return []
    found: list[Holder] = [("contact", c["contact_id"]) for c in deal.get("contacts", [])]
    if deal.get("company_id"):
        found.append(("company", deal["company_id"]))
    return found


def summary_deltas(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> dict[Holder, dict[str, Decimal]]:
    """Per summary, what to ADD to each of its attributes for the deal to go from `old` to
    `new` (None: not there, before a creation or after a deletion). Exact; summaries and
    attributes whose change is nothing are left out, in a stable order."""
    with exact():
        totals: dict[Holder, dict[str, Decimal]] = {}
        for state, sign in ((old, -1), (new, 1)):
            adds = contribution(state)
            if not adds:
                continue
            for holder in holders(state):
                cell = totals.setdefault(holder, {})
                for name, value in adds.items():
                    cell[name] = cell.get(name, Decimal(0)) + sign * value
        deltas: dict[Holder, dict[str, Decimal]] = {}
        for holder in sorted(totals):
            changed = {k: v for k, v in sorted(totals[holder].items()) if v != 0}
            if changed:
                deltas[holder] = changed
        return deltas
