"""Rotting deals, without scans: a deal that stays in an open stage longer than the stage's
`rotting_days` without an activity gets `DealRotting`, once, at that moment.

Each deal that can rot has one one-time EventBridge Scheduler schedule, `deal-<deal_id>` in
the stage's rotting group, `at()` the moment it rots. The deal_rotting function keeps it
right: after every change of a deal (and every activity logged on it) it reads the deal as
it is now, and puts the schedule at the new moment, or deletes it (closed, deleted, a stage
that does not rot). Reading the deal rather than trusting the event makes that idempotent
and indifferent to the order events arrive in. The schedule fires the same function with
`{"kind": "deal_rots", "tenant_id", "deal_id", "rots_at"}`; a firing whose `rots_at` the deal
no longer has (it moved, or got an activity, since) does nothing, and the alert is written
with the deal's `rot_alerted_for`, so that a repeated firing alerts once.
docs/decisions.md, 81.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crm_core.clients import client
from crm_core.clock import format_iso
from crm_core.deals.pipeline_store import stage_of
from crm_core.schedules import FunctionTarget, Schedules, one_time_request

DEAL_ROTS = "deal_rots"


def rots_at(deal: Mapping[str, Any], pipeline: Mapping[str, Any]) -> str | None:
    """When the deal rots, as things stand: its stage's rotting days after it entered the
    stage or had its last activity, whichever is later; None if it cannot rot."""
    if deal.get("status") != "open":
        return None
    stage = stage_of(pipeline, deal["stage_id"])
    days = stage.get("rotting_days") if stage else None
    if not days:
        return None
    since = max(deal["stage_entered_at"], deal.get("last_activity_at") or "")
    return format_iso(datetime.fromisoformat(since) + timedelta(days=int(days)))


def schedule_name(deal_id: str) -> str:
    # Deal ids are ULIDs, unique across tenants; a name has at most 64 characters.
    return f"deal-{deal_id}"


# Where the stage's rotting schedules go (the function's environment).
RotTarget = FunctionTarget


class RotSchedules(Schedules):
    """Put and delete the rotting schedules."""

    def __init__(
        self, target: RotTarget, make_client: Callable[[], Any] = lambda: client("scheduler")
    ) -> None:
        super().__init__(make_client)
        self.target = target

    def request(self, tenant_id: str, deal_id: str, moment: str) -> dict[str, Any]:
        at = datetime.fromisoformat(moment)
        if at.microsecond:  # at() has whole seconds: never fire before the moment
            at = at.replace(microsecond=0) + timedelta(seconds=1)
        payload = {"kind": DEAL_ROTS, "tenant_id": tenant_id, "deal_id": deal_id, "rots_at": moment}
        return one_time_request(
            name=schedule_name(deal_id),
            group=self.target.group,
            at=at,
            timezone="UTC",
            function_arn=self.target.function_arn,
            role_arn=self.target.role_arn,
            dlq_arn=self.target.dlq_arn,
            payload=json.dumps(payload, separators=(",", ":")),
            description=f"Deal {deal_id} of tenant {tenant_id} rots",
        )

    def put(self, tenant_id: str, deal_id: str, moment: str) -> None:
        self.upsert(self.request(tenant_id, deal_id, moment))

    def delete(self, deal_id: str) -> bool:
        """False when there was none (never made, or it fired and Scheduler deleted it)."""
        return self.remove(schedule_name(deal_id), self.target.group)
