"""A tenant's SLA policy in the table (`GET/PUT /settings/sla`): one item, versioned.

Until a tenant sets one, `DEFAULT_POLICY` applies (version 0). A new policy applies to a
case from its next change: its due times and timers are computed again then (as help
desks do), not for every open case at once, which would be a write per case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core import keys
from crm_core.cases.sla_policy import DEFAULT_POLICY, SlaPolicy, SlaPolicyBody, stored_form
from crm_core.clock import now_iso
from crm_core.errors import ConcurrentChange, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.table import Table, TransactionCancelled, read_modify_write

SLA_POLICY_ITEM = "sla_policy"
_FIELDS = ("business_hours", "targets", "warn_at_percent", "version", "updated_at")


def to_policy(item: dict[str, Any] | None) -> SlaPolicy:
    if item is None:
        return SlaPolicy.model_validate({**DEFAULT_POLICY, "version": 0})
    return SlaPolicy.model_validate({k: item.get(k) for k in _FIELDS})


class SlaPolicyStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.clock = clock

    def get(self, tenant_id: str) -> SlaPolicy:
        return to_policy(self.table.get(keys.sla_policy(tenant_id)))

    def replace(
        self, tenant_id: str, body: SlaPolicyBody, expected: int | None, origin: Origin
    ) -> SlaPolicy:
        def attempt() -> SlaPolicy:
            old = self.table.get(keys.sla_policy(tenant_id))
            version = 0 if old is None else int(old["version"])
            if expected is not None and expected != version:
                raise PreconditionFailed(f"the SLA policy is at version {version}, not {expected}")
            new: dict[str, Any] = {
                **keys.sla_policy(tenant_id),
                "type": SLA_POLICY_ITEM,
                "tenant_id": tenant_id,
                **stored_form(body),
                "version": version + 1,
                "updated_at": self.clock(),
                "updated_by": origin.actor.id,
            }
            condition = "attribute_not_exists(PK)" if old is None else "version = :v"
            values = {} if old is None else {"v": version}
            try:
                self.table.transact([self.table.op.put(new, condition, **values)])
            except TransactionCancelled:
                raise ConcurrentChange("the SLA policy changed meanwhile") from None
            return to_policy(new)

        return read_modify_write(attempt, "SLA policy")
