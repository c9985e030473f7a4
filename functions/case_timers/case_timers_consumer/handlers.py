"""case_timers: keeps each case's one-time SLA schedule at its next warning or breach, and
announces them when it fires (crm_core/cases/timers.py).

- A case's change (opened, updated, assigned, replied, status changed, solved, reopened):
  its schedule is put at the case's next alarm as it is now, or deleted.
- The schedule's firing (`{"kind": "case_sla_due", ...}` from EventBridge Scheduler):
  CaseSlaWarning / CaseSlaBreached for what is due, once each, then the next schedule.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from case_timers_consumer.context import consumer, keeper, logger, metrics
from crm_core.cases.timers import CASE_SLA_DUE
from crm_core.events.cases import (
    CaseAssigned,
    CaseOpened,
    CaseReopened,
    CaseReplied,
    CaseSolved,
    CaseStatusChanged,
    CaseUpdated,
)

CaseEvent = (
    CaseOpened
    | CaseUpdated
    | CaseAssigned
    | CaseReplied
    | CaseStatusChanged
    | CaseSolved
    | CaseReopened
)


class SlaDue(BaseModel):
    """The Input of an SLA schedule."""

    model_config = ConfigDict(extra="ignore")
    kind: str
    tenant_id: str
    case_id: str
    due_at: str


def case_changed(event: CaseEvent) -> dict[str, Any]:
    return {"next_at": keeper.sync(event.tenant_id, event.data.case.id)}


# One handler for each of these events (stacked decorators would narrow its type).
consumer.on(CaseOpened)(case_changed)
consumer.on(CaseUpdated)(case_changed)
consumer.on(CaseAssigned)(case_changed)
consumer.on(CaseReplied)(case_changed)
consumer.on(CaseStatusChanged)(case_changed)
consumer.on(CaseSolved)(case_changed)
consumer.on(CaseReopened)(case_changed)


def _is_due(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("kind") == CASE_SLA_DUE


@consumer.on_outside("case SLA schedule", _is_due, SlaDue.model_validate)
def sla_due(due: SlaDue) -> dict[str, Any]:
    announced = keeper.fire(due.tenant_id, due.case_id, due.due_at)
    for detail_type in announced:
        metrics.add_metric(name=detail_type, unit=MetricUnit.Count, value=1)
    if announced:
        logger.info("case SLA alarms", extra={"case_id": due.case_id, "announced": announced})
    return {"announced": announced}
