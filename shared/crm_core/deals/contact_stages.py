"""What a deal does to the lifecycle stage of its contacts, decided without I/O: a contact
on an open deal becomes an opportunity, on a won deal a customer. Forward only (a customer
never goes back to opportunity, an evangelist or `other` is left alone), and never over a
person's change of stage made at or after the deal's change (a person's choice wins, as
with scoring: decision 42)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The stages a deal may move a contact out of, in the order it moves them.
_LADDER = {"subscriber": 0, "lead": 1, "mql": 2, "sql": 3, "opportunity": 4, "customer": 5}
OPPORTUNITY = "opportunity"
CUSTOMER = "customer"


def target_of(status: str) -> str | None:
    """The stage a deal of this status moves its contacts to: none for a lost deal."""
    return {"open": OPPORTUNITY, "won": CUSTOMER}.get(status)


def promotes(contact: Mapping[str, Any], target: str, event_time: str) -> bool:
    stage = contact.get("lifecycle_stage")
    if stage not in _LADDER or _LADDER[stage] >= _LADDER[target]:
        return False
    changed_by_person = contact.get("stage_changed_at")
    return not (changed_by_person and changed_by_person >= event_time)
