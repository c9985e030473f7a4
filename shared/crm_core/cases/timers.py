"""SLA timers that fire on their own, without scans: one one-time EventBridge Scheduler
schedule per case, `case-<case_id>` in the stage's SLA group, `at()` the case's next warning
or breach (`sla_next_at`, which every change of the case computes).

The case_timers function keeps it right: after every change of a case it reads the case as
it is now and puts the schedule at its `sla_next_at`, or deletes it (answered, paused,
solved: nothing coming). Reading the case rather than trusting the event makes that
idempotent and indifferent to the order events arrive in. The schedule fires the same
function with `{"kind": "case_sla_due", "tenant_id", "case_id", "due_at"}`; the firing
records every alarm due by then (`CaseStore.announce_due`, once each: the case's version
and each target's `warned_at` / `breached_at` guard a second firing), then puts the
schedule at the next one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crm_core import keys
from crm_core.cases.case_store import CASE_ITEM, CaseStore
from crm_core.clients import client
from crm_core.clock import parse_iso
from crm_core.schedules import FunctionTarget, Schedules, one_time_request
from crm_core.table import Table

CASE_SLA_DUE = "case_sla_due"
# A firing in the second before its moment waits for it (never longer).
MAX_WAIT_SECONDS = 1.0


def schedule_name(case_id: str) -> str:
    # Case ids are ULIDs, unique across tenants; a name has at most 64 characters.
    return f"case-{case_id}"


class SlaSchedules(Schedules):
    def __init__(
        self, target: FunctionTarget, make_client: Callable[[], Any] = lambda: client("scheduler")
    ) -> None:
        super().__init__(make_client)
        self.target = target

    def request(self, tenant_id: str, case_id: str, moment: str) -> dict[str, Any]:
        # at() has whole seconds: the second the moment falls in (the firing waits out the
        # rest, `TimerKeeper.fire`), not the next one, which would add up to a second.
        at = parse_iso(moment).replace(microsecond=0)
        payload = {
            "kind": CASE_SLA_DUE,
            "tenant_id": tenant_id,
            "case_id": case_id,
            "due_at": moment,
        }
        return one_time_request(
            name=schedule_name(case_id),
            group=self.target.group,
            at=at,
            timezone="UTC",
            function_arn=self.target.function_arn,
            role_arn=self.target.role_arn,
            dlq_arn=self.target.dlq_arn,
            payload=json.dumps(payload, separators=(",", ":")),
            description=f"SLA of case {case_id} of tenant {tenant_id}",
        )

    def put(self, tenant_id: str, case_id: str, moment: str) -> None:
        self.upsert(self.request(tenant_id, case_id, moment))

    def delete(self, case_id: str) -> bool:
        return self.remove(schedule_name(case_id), self.target.group)


class TimerKeeper:
    def __init__(
        self, table: Table, schedules: SlaSchedules, now: Callable[[], datetime] | None = None
    ) -> None:
        self.table = table
        self.schedules = schedules
        self.cases = CaseStore(table)
        self.now = now or (lambda: datetime.now(UTC))
        self.sleep = time.sleep

    def sync(self, tenant_id: str, case_id: str) -> str | None:
        """Put the case's schedule at its next alarm, or delete it; the moment scheduled."""
        item = self.table.get(keys.case(tenant_id, case_id))
        moment = item.get("sla_next_at") if item and item.get("type") == CASE_ITEM else None
        if moment is None:
            self.schedules.delete(case_id)
            return None
        self.schedules.put(tenant_id, case_id, moment)
        return str(moment)

    def fire(self, tenant_id: str, case_id: str, due_at: str | None = None) -> list[str]:
        """The schedule fired: announce what is due (once), then schedule the next alarm.
        A firing up to a second before `due_at` (the schedule's whole second) waits for it.
        The detail types announced."""
        if due_at is not None:
            early = (parse_iso(due_at) - self.now()).total_seconds()
            if 0 < early <= MAX_WAIT_SECONDS:
                self.sleep(early)
        announced = self.cases.announce_due(tenant_id, case_id, self.now())
        self.sync(tenant_id, case_id)
        return [event.DETAIL_TYPE for event in announced]
