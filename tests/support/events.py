"""Domain events as producers write them, for tests that play the bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from crm_core.events import contacts as events
from crm_core.events.envelope import Origin


def contact_created(
    tenant: str = "acme", origin: Origin | None = None, **attributes: Any
) -> dict[str, Any]:
    """The `detail` of a new ContactCreated (a fresh event_id), built through its model."""
    contact = {
        "id": "01JBCNTACT0000000000000000",
        "email": "ada@example.com",
        "lifecycle_stage": "lead",
        "tags": [],
        "attributes": attributes,
        "email_consent": "unknown",
        "score": 0,
        "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": "2026-11-22T10:00:00.000Z",
        "version": 1,
    }
    event = events.ContactCreated.create(
        tenant,
        origin or Origin.system("tests"),
        events.ContactData.model_validate({"contact": contact}),
    )
    detail: dict[str, Any] = json.loads(event.detail_json())
    return detail


def delivered(outbox_item: Mapping[str, Any]) -> dict[str, Any]:
    """An outbox item's event as an EventBridge rule delivers it to its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),  # EventBridge's id is new on every delivery
        "detail-type": outbox_item["detail_type"],
        "source": outbox_item["source"],
        "account": "123456789012",
        "time": outbox_item["occurred_at"][:19] + "Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(outbox_item["detail"]),
    }


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same event sent again (EventBridge gives each delivery a new id)."""
    return {**event, "id": str(uuid.uuid4())}


def outbox_events(table: Any, partition: str, detail_type: str) -> list[dict[str, Any]]:
    """The events of `detail_type` in an item's partition (its outbox), as EventBridge
    delivers them, in the order they happened."""
    items = table.query_all(None, partition, sort_below="P")  # OUTBOX# sorts below P
    found = [i for i in items if i.get("detail_type") == detail_type]
    return [delivered(i) for i in sorted(found, key=lambda i: (i["occurred_at"], i["event_id"]))]
