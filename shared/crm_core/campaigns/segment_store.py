"""Segments in the single table: one partition per tenant, each change with its event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_core import keys
from crm_core.campaigns.segments import Segment, SegmentCreate
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, NotFound, PreconditionFailed
from crm_core.events.campaigns import (
    SegmentCreated,
    SegmentData,
    SegmentDeleted,
    SegmentDeletedData,
    SegmentUpdated,
)
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

SEGMENT_ITEM = "segment"
_API_FIELDS = tuple(Segment.model_fields)


def to_segment(item: Mapping[str, Any]) -> Segment:
    return Segment.model_validate({k: item[k] for k in _API_FIELDS if k in item})


def _data(item: Item) -> SegmentData:
    return SegmentData(
        segment_id=item["id"], name=item["name"], filter=item["filter"], version=item["version"]
    )


class SegmentStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def load(self, tenant_id: str, segment_id: str) -> Item:
        item = self.table.get(keys.segment(tenant_id, segment_id))
        if item is None or item.get("type") != SEGMENT_ITEM:
            raise NotFound("no such segment")
        return item

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (segment ids are ULIDs)."""
        listing = ListQuery("segments", keys.segments_of_tenant(tenant_id))
        return self.table.query(listing, limit, cursor, sort_prefix=keys.SEGMENT_PREFIX)

    def create(self, tenant_id: str, body: SegmentCreate, origin: Origin) -> Segment:
        now, segment_id = now_iso(), new_ulid()
        item: Item = {
            **keys.segment(tenant_id, segment_id),
            "type": SEGMENT_ITEM,
            "id": segment_id,
            "tenant_id": tenant_id,
            "name": body.name,
            "description": body.description,
            "filter": body.filter.model_dump(mode="json", exclude_none=True),
            "created_at": now,
            "updated_at": now,
            "created_by": origin.actor.id,
            "version": 1,
        }
        event = SegmentCreated.create(tenant_id, origin, _data(item), now)
        self.table.transact(
            [
                self.op.put(item, "attribute_not_exists(PK)"),
                outbox_put(self.op, keys.segment(tenant_id, segment_id), event),
            ]
        )
        return to_segment(item)

    def update(
        self,
        tenant_id: str,
        segment_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Segment:
        def attempt() -> Segment:
            old = self._for_write(tenant_id, segment_id, expected)
            if "filter" in changes:
                changes["filter"] = {k: v for k, v in changes["filter"].items() if v is not None}
            new = {
                **apply_patch(old, changes),
                "updated_at": now_iso(),
                "version": old["version"] + 1,
            }
            event = SegmentUpdated.create(tenant_id, origin, _data(new), new["updated_at"])
            try:
                self.table.transact(
                    [
                        self.op.put(new, "version = :v", v=old["version"]),
                        outbox_put(self.op, keys.segment(tenant_id, segment_id), event),
                    ]
                )
            except TransactionCancelled:
                raise ConcurrentChange("the segment changed meanwhile") from None
            return to_segment(new)

        return read_modify_write(attempt, "segment")

    def delete(self, tenant_id: str, segment_id: str, expected: int | None, origin: Origin) -> None:
        def attempt() -> None:
            old = self._for_write(tenant_id, segment_id, expected)
            event = SegmentDeleted.create(
                tenant_id, origin, SegmentDeletedData(segment_id=segment_id)
            )
            try:
                self.table.transact(
                    [
                        self.op.delete(
                            keys.segment(tenant_id, segment_id), "version = :v", v=old["version"]
                        ),
                        outbox_put(self.op, keys.segment(tenant_id, segment_id), event),
                    ]
                )
            except TransactionCancelled:
                raise ConcurrentChange("the segment changed meanwhile") from None

        read_modify_write(attempt, "segment")

    def _for_write(self, tenant_id: str, segment_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, segment_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the segment is at version {item['version']}, not {expected}")
        return item
