"""What the deal_rotting function does with a deal (crm_core/deals/rotting.py says why):
keep its rotting schedule at the moment the deal rots, note its activities, and alert once
when its schedule fires on a deal still rotting at that moment."""

from __future__ import annotations

from collections.abc import Callable

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.deals.deal_store import DEAL_ITEM, to_deal
from crm_core.deals.pipeline_store import PipelineStore, stage_of
from crm_core.deals.rotting import RotSchedules, rots_at
from crm_core.dynamo import Item
from crm_core.errors import NotFound
from crm_core.events import deals as events
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.table import Table, TransactionCancelled

ORIGIN_NAME = "deal_rotting"


class RotKeeper:
    def __init__(
        self, table: Table, schedules: RotSchedules, clock: Callable[[], str] = now_iso
    ) -> None:
        self.table = table
        self.schedules = schedules
        self.pipelines = PipelineStore(table, clock)
        self.clock = clock

    def _deal(self, tenant_id: str, deal_id: str) -> Item | None:
        item = self.table.get(keys.deal(tenant_id, deal_id))
        return item if item is not None and item.get("type") == DEAL_ITEM else None

    def _rots_at(self, tenant_id: str, deal: Item) -> str | None:
        try:
            pipeline = self.pipelines.load(tenant_id, deal["pipeline_id"])
        except NotFound:
            return None
        return rots_at(deal, pipeline)

    def sync(self, tenant_id: str, deal_id: str) -> str | None:
        """Put the deal's schedule where the deal, as it is now, rots; delete it if it
        cannot. Returns the moment scheduled."""
        deal = self._deal(tenant_id, deal_id)
        moment = self._rots_at(tenant_id, deal) if deal is not None else None
        if moment is None or (deal is not None and deal.get("rot_alerted_for") == moment):
            self.schedules.delete(deal_id)
            return None
        self.schedules.put(tenant_id, deal_id, moment)
        return moment

    def note_activity(self, tenant_id: str, deal_id: str, at: str) -> bool:
        """The deal's last activity moves forward to `at` (never back); False if the deal is
        gone or already had a later one."""
        operation = self.table.op.update(
            keys.deal(tenant_id, deal_id),
            "SET last_activity_at = :at",
            "#type = :deal AND (attribute_not_exists(last_activity_at) OR last_activity_at < :at)",
            {"#type": "type"},
            at=at,
            deal=DEAL_ITEM,
        )
        try:
            self.table.transact([operation])
        except TransactionCancelled:
            return False
        return True

    def fire(self, tenant_id: str, deal_id: str, moment: str, correlation_id: str | None) -> bool:
        """The schedule of `moment` fired: DealRotting, once, if the deal still rots then."""
        deal = self._deal(tenant_id, deal_id)
        if deal is None or self._rots_at(tenant_id, deal) != moment:
            return False  # moved, closed, deleted or touched since: its schedule moved too
        if deal.get("rot_alerted_for") == moment or moment > self.clock():
            return False
        pipeline = self.pipelines.load(tenant_id, deal["pipeline_id"])
        stage = stage_of(pipeline, deal["stage_id"]) or {}
        since = max(deal["stage_entered_at"], deal.get("last_activity_at") or "")
        data = events.DealRottingData(
            deal=to_deal(deal), since=since, rotting_days=int(stage.get("rotting_days") or 0)
        )
        origin = Origin.system(ORIGIN_NAME, correlation_id)
        event = events.DealRotting.create(tenant_id, origin, data, moment)
        key = keys.deal(tenant_id, deal_id)
        alert = self.table.op.update(
            key,
            "SET rot_alerted_for = :moment",
            "version = :v AND "
            "(attribute_not_exists(rot_alerted_for) OR rot_alerted_for <> :moment)",
            None,
            moment=moment,
            v=deal["version"],
        )
        try:
            self.table.transact([alert, outbox_put(self.table.op, key, event)])
        except TransactionCancelled:
            return False  # alerted meanwhile, or changed: its own sync decides again
        return True
