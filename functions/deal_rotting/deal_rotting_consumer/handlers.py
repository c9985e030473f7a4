"""deal_rotting: keeps each deal's one-time rotting schedule at the moment the deal rots,
and alerts when it fires (crm_core/deals/rotting.py, rot_keeper.py).

- A deal's change (created, updated, moved, won, lost, deleted): its schedule is put where
  the deal, as it is now, rots, or deleted.
- An activity logged on a deal: the deal's `last_activity_at` moves forward, then the same.
- The schedule's firing (`{"kind": "deal_rots", ...}` from EventBridge Scheduler): DealRotting,
  once, if the deal still rots at that moment.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from crm_core.deals.rotting import DEAL_ROTS
from crm_core.events.activities import ActivityLogged
from crm_core.events.deals import (
    DealCreated,
    DealDeleted,
    DealLost,
    DealStageChanged,
    DealUpdated,
    DealWon,
)
from deal_rotting_consumer.context import consumer, keeper, logger, metrics

DealEvent = DealCreated | DealUpdated | DealStageChanged | DealWon | DealLost


class RotDue(BaseModel):
    """The Input of a rotting schedule."""

    model_config = ConfigDict(extra="ignore")
    kind: str
    tenant_id: str
    deal_id: str
    rots_at: str


def deal_changed(event: DealEvent) -> dict[str, Any]:
    return {"rots_at": keeper.sync(event.tenant_id, event.data.deal.id)}


# One handler for each of these events (stacked decorators would narrow its type).
consumer.on(DealCreated)(deal_changed)
consumer.on(DealUpdated)(deal_changed)
consumer.on(DealStageChanged)(deal_changed)
consumer.on(DealWon)(deal_changed)
consumer.on(DealLost)(deal_changed)


@consumer.on(DealDeleted)
def deal_deleted(event: DealDeleted) -> dict[str, Any]:
    return {"rots_at": keeper.sync(event.tenant_id, event.data.deal_id)}


@consumer.on(ActivityLogged)
def activity_logged(event: ActivityLogged) -> dict[str, Any]:
    deal_id = getattr(event.data.activity, "deal_id", None)
    if not deal_id:
        return {"deal": None}
    keeper.note_activity(event.tenant_id, deal_id, event.data.activity.occurred_at)
    return {"deal": deal_id, "rots_at": keeper.sync(event.tenant_id, deal_id)}


def _is_due(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("kind") == DEAL_ROTS


@consumer.on_outside("deal rotting schedule", _is_due, RotDue.model_validate)
def deal_rots(due: RotDue) -> dict[str, Any]:
    alerted = keeper.fire(due.tenant_id, due.deal_id, due.rots_at, None)
    if alerted:
        metrics.add_metric(name="DealsRotting", unit=MetricUnit.Count, value=1)
        logger.info("deal rotting", extra={"deal_id": due.deal_id, "rots_at": due.rots_at})
    return {"alerted": alerted}
