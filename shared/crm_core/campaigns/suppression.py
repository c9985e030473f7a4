"""The tenant's suppression list: addresses no campaign mails again.

An address lands here when SES reports a permanent bounce or a complaint for it (or when a
send to it is refused as suppressed by SES itself). The list is per tenant and per
normalized address, not per contact: a contact who changes address may be mailed at the
new one, and a new contact with a suppressed address is not.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from crm_core import keys
from crm_core.table import Op

SUPPRESSION_ITEM = "suppression"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"


def normal(email: str) -> str:
    """Contacts store addresses lower-cased (crm_core.normalize.email); SES reports them as
    sent. Lower-casing both is enough to meet, without validating again."""
    return email.strip().lower()


def suppression_key(tenant_id: str, email: str) -> dict[str, str]:
    return keys.suppression(tenant_id, normal(email))


def suppress_put(
    op: Op,
    tenant_id: str,
    email: str,
    reason: SuppressionReason,
    now: str,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """The transaction part that suppresses `email` (a repeat overwrites with the latest
    reason; the address stays suppressed either way)."""
    item = {
        **suppression_key(tenant_id, email),
        "type": SUPPRESSION_ITEM,
        "tenant_id": tenant_id,
        "email": normal(email),
        "reason": reason.value,
        "suppressed_at": now,
    }
    if campaign_id:
        item["campaign_id"] = campaign_id
    return op.put(item)
