"""The transactional outbox: a domain event is an item written in the same transaction as
the change it describes (docs/decisions.md, "Outbox").

The table's stream delivers each new outbox item to outbox_publisher (the function's
FilterCriteria lets only these INSERTs through), which puts the event on the bus. The item
is never updated; it expires after `RETENTION_DAYS`, a window in which an event can be
found again by its item's partition.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from crm_core import keys
from crm_core.errors import PayloadTooLarge
from crm_core.events.envelope import DomainEvent, trace_header
from crm_core.table import Op

OUTBOX_EVENT = "outbox_event"
RETENTION_DAYS = 7
# PutEvents refuses an entry over 256 KB, counted as in AWS's documentation: the UTF-8
# bytes of Source, DetailType, Detail and each Resource, plus 14 for a Time.
MAX_EVENT_BYTES = 256 * 1024
_TIME_BYTES = 14

# The stream filter of outbox_publisher (template.yaml holds the same pattern; a test keeps
# them equal).
STREAM_FILTER: dict[str, Any] = {
    "eventName": ["INSERT"],
    "dynamodb": {"NewImage": {"type": {"S": [OUTBOX_EVENT]}}},
}


class EventTooLarge(PayloadTooLarge):
    """The change would produce an event EventBridge cannot carry: refused before writing."""


def entry_bytes(source: str, detail_type: str, detail: str, resources: tuple[str, ...] = ()) -> int:
    return (
        _TIME_BYTES
        + len(source.encode())
        + len(detail_type.encode())
        + len(detail.encode())
        + sum(len(r.encode()) for r in resources)
    )


def outbox_item(partition: str, event: DomainEvent) -> dict[str, Any]:
    """The outbox item of `event`, in `partition` (the PK of the item the event is about)."""
    detail = event.detail_json()
    size = entry_bytes(event.SOURCE, event.DETAIL_TYPE, detail)
    if size > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"this change would publish a {event.DETAIL_TYPE} event of {size} bytes; "
            f"events are limited to {MAX_EVENT_BYTES} bytes, so nothing was saved"
        )
    item: dict[str, Any] = {
        **keys.outbox_event(partition, event.event_id),
        "type": OUTBOX_EVENT,
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "source": event.SOURCE,
        "detail_type": event.DETAIL_TYPE,
        "detail": detail,
        "occurred_at": event.metadata.occurred_at,
        "ttl": int(time.time()) + RETENTION_DAYS * 86_400,
    }
    header = trace_header()
    if header:
        item["trace_header"] = header
    return item


def outbox_put(op: Op, owner_key: Mapping[str, str], event: DomainEvent) -> dict[str, Any]:
    """The transaction part that records `event` beside a write to the item at `owner_key`.

    `attribute_not_exists` makes a retried transaction fail rather than write one event twice.
    """
    return op.put(outbox_item(owner_key["PK"], event), "attribute_not_exists(PK)")
