"""The tenant's suppression list, as the campaigns read and write it.

The item is owned by `crm_core.contacts.suppression`: an unsubscribe suppresses the
contact's addresses in the transaction of its consent, which the contacts store writes, and
the contacts package must not import the campaigns one (they would import each other).
"""

from __future__ import annotations

from crm_core.contacts.suppression import (
    SUPPRESSION_ITEM,
    SuppressionReason,
    normal,
    suppress,
    suppress_put,
    suppression_key,
)

__all__ = [
    "SUPPRESSION_ITEM",
    "SuppressionReason",
    "normal",
    "suppress",
    "suppress_put",
    "suppression_key",
]
