"""The tenant's suppression list: addresses no campaign mails again. This module owns the
item; the contacts store, the campaigns' SES events and the lead processor write it here.

The list is per tenant and per normalized address, not per contact: a contact who changes
address may be mailed at the new one, and a new contact with a suppressed address is not
(a contact deleted and created again included). One item per address holds every reason
that applies to it, each as its own time attribute (`<reason>_at`):

- `hard_bounce`: SES reported a permanent bounce (or refused the address as suppressed);
- `complaint`: the recipient marked a campaign's email as spam;
- `unsubscribed`: the person unsubscribed (the link, a complaint, staff recording their
  request, a merge that kept an unsubscribe). Written in the same transaction as the
  contact's consent, for each of its addresses.

Only the person's own opt-in (a signed lead with consent) lifts a reason, and only
`unsubscribed`: a bounce says the address does not take mail, a complaint that its owner
called our email spam, and neither is undone by a form. `reason` names the first reason
the address was suppressed for (items written before `<reason>_at` existed have only it);
the sender skips an address whatever its reasons are, as long as the item exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from crm_core import keys
from crm_core.table import Op

SUPPRESSION_ITEM = "suppression"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"


def normal(email: str) -> str:
    """Contacts store addresses lower-cased (crm_core.normalize.email); SES reports them as
    sent. Lower-casing both is enough to meet, without validating again."""
    return email.strip().lower()


def suppression_key(tenant_id: str, email: str) -> dict[str, str]:
    return keys.suppression(tenant_id, normal(email))


def _at(reason: SuppressionReason) -> str:
    return f"{reason.value}_at"


def suppress(
    op: Op,
    tenant_id: str,
    email: str,
    reason: SuppressionReason,
    now: str,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """The transaction part that suppresses `email` for `reason` (an Update: the reasons
    already there stay; a repeat only moves the reason's time)."""
    sets = [
        "#type = :type",
        "tenant_id = :tenant",
        "#email = :email",
        "#reason = if_not_exists(#reason, :reason)",
        "suppressed_at = if_not_exists(suppressed_at, :now)",
        "#at = :now",
    ]
    values: dict[str, Any] = {
        "type": SUPPRESSION_ITEM,
        "tenant": tenant_id,
        "email": normal(email),
        "reason": reason.value,
        "now": now,
    }
    if campaign_id:
        sets.append("campaign_id = :campaign")
        values["campaign"] = campaign_id
    return op.update(
        suppression_key(tenant_id, email),
        "SET " + ", ".join(sets),
        None,
        {"#type": "type", "#email": "email", "#reason": "reason", "#at": _at(reason)},
        **values,
    )


# Before reasons had their own times, a repeat overwrote the one `reason`: the name is kept
# for the callers that put a bounce or a complaint.
suppress_put = suppress


def reasons(item: Mapping[str, Any] | None) -> frozenset[SuppressionReason]:
    """The reasons that hold for a suppression item as read (none for no item)."""
    if item is None:
        return frozenset()
    found = {r for r in SuppressionReason if item.get(_at(r))}
    if item.get("reason") in SuppressionReason._value2member_map_:
        found.add(SuppressionReason(item["reason"]))
    return frozenset(found)


def unsubscribed(item: Mapping[str, Any] | None) -> bool:
    """Whether the address is suppressed because its person unsubscribed."""
    return SuppressionReason.UNSUBSCRIBED in reasons(item)


def not_unsubscribed(op: Op, tenant_id: str, email: str) -> dict[str, Any]:
    """A condition check, for a transaction that subscribes `email`: its person never
    unsubscribed it (no item, or an item without that reason)."""
    # `reason` is never `unsubscribed` without its time: they are written together, and a
    # lift that keeps the item names another reason.
    return op.check(
        suppression_key(tenant_id, email),
        f"attribute_not_exists({_at(SuppressionReason.UNSUBSCRIBED)})",
    )


def lift_unsubscribe(op: Op, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of an opt-in's transaction that takes the person's unsubscribe off an
    address, given its suppression item as just read: the item goes when that was its only
    reason, else the reason goes and the others stay. None when there is nothing to lift.

    Conditioned on the other reasons as read, so that a bounce or a complaint recorded
    meanwhile is never deleted with it: the transaction fails and the caller reads again."""
    if not unsubscribed(item):
        return None
    assert item is not None
    key = {"PK": item["PK"], "SK": item["SK"]}
    others = sorted(reasons(item) - {SuppressionReason.UNSUBSCRIBED})
    absent = [r for r in SuppressionReason if r != SuppressionReason.UNSUBSCRIBED]
    if not others:
        condition = " AND ".join(f"attribute_not_exists({_at(r)})" for r in absent)
        return op.delete(key, condition)
    expression = f"REMOVE {_at(SuppressionReason.UNSUBSCRIBED)}"
    names: dict[str, str] | None = None
    values: dict[str, Any] = {}
    if item.get("reason") == SuppressionReason.UNSUBSCRIBED:
        # `reason` names the first reason: now the first of those that stay.
        expression = f"SET #reason = :other {expression}"
        names, values["other"] = {"#reason": "reason"}, others[0].value
    kept = [r for r in absent if r not in others]
    condition = " AND ".join(
        [f"attribute_exists({_at(SuppressionReason.UNSUBSCRIBED)})"]
        + [f"attribute_not_exists({_at(r)})" for r in kept]
    )
    return op.update(key, expression, condition, names, **values)


def addresses(contact: Mapping[str, Any]) -> list[str]:
    """A contact's addresses, normalized: its email and the merged ones, each once."""
    found = [contact.get("email"), *contact.get("other_emails", [])]
    return list(dict.fromkeys(normal(e) for e in found if e))


def suppress_all(
    op: Op, tenant_id: str, emails: Iterable[str], reason: SuppressionReason, now: str
) -> list[dict[str, Any]]:
    return [suppress(op, tenant_id, e, reason, now) for e in dict.fromkeys(emails)]
