"""Leads (webhook deliveries) in the single table: stored as received, with their status.

A delivery is one transaction: the lead item (raw payload, status `accepted`), a claim on
the delivery (its timestamp and body), a claim on the sender's `external_id` when it gave
one, and the LeadReceived event in the outbox. A repeated delivery fails on a claim and
gets the first lead's id: nothing new is stored, and nothing is half stored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import NotFound
from crm_core.events.envelope import Origin
from crm_core.events.leads import LeadReceived, LeadReceivedData
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.leads.models import Delivery, DeliveryDetail, LeadStatus
from crm_core.pagination import ListQuery
from crm_core.table import Op, Page, Table, TransactionCancelled

LEAD = "lead"
CLAIM = "lead_claim"
# A signed delivery is accepted for 300 s either side of its timestamp: its claim need only
# outlive that, and is kept two days for good measure. External ids are claimed for good.
DELIVERY_CLAIM_SECONDS = 2 * 86_400
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Accepted:
    lead_id: str
    replayed: bool


@dataclass(frozen=True)
class Received:
    """A verified delivery, ready to store."""

    tenant_id: str
    source_id: str
    media_type: str
    body: str
    delivery_digest: str
    external_id: str | None
    request_id: str | None


def to_delivery(item: Mapping[str, Any], detail: bool = False) -> Delivery:
    fields = DeliveryDetail.model_fields if detail else Delivery.model_fields
    values = {k: item[k] for k in fields if k in item}
    values["lead_id"] = item["id"]
    if detail:
        return DeliveryDetail.model_validate(values)
    return Delivery.model_validate(values)


def status_keys(tenant_id: str, source_id: str, lead_id: str, status: LeadStatus) -> dict[str, str]:
    """The GSI2 attributes that list a lead under its status."""
    return {"GSI2PK": keys.deliveries_in_status(tenant_id, source_id, status), "GSI2SK": lead_id}


def status_change(
    op: Op,
    lead: Mapping[str, Any],
    status: LeadStatus,
    *,
    reason: str | None = None,
    expected: LeadStatus | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The Update that moves a lead to `status` (for the lead processor's transactions).

    With `expected`, only from that status: a processed or rejected lead never changes."""
    tenant_id, source_id, lead_id = lead["tenant_id"], lead["source_id"], lead["id"]
    values: dict[str, Any] = {
        "status": status.value,
        "now": now_iso(),
        **status_keys(tenant_id, source_id, lead_id, status),
        **fields,
    }
    sets = ["#status = :status", "updated_at = :now", "GSI2PK = :GSI2PK", "GSI2SK = :GSI2SK"]
    sets += [f"{name} = :{name}" for name in fields]
    removes = []
    if reason is not None:
        values["reason"] = reason[:MAX_REASON_CHARS]
        sets.append("reason = :reason")
    else:
        removes.append("reason")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    condition = "attribute_exists(PK)"
    if expected is not None:
        condition += " AND #status = :expected"
        values["expected"] = expected.value
    return op.update(
        keys.lead(tenant_id, lead_id), expression, condition, {"#status": "status"}, **values
    )


class LeadStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    # The webhook's write ----------------------------------------------------------------
    def accept(self, received: Received) -> Accepted:
        tenant_id, source_id = received.tenant_id, received.source_id
        lead_id = new_ulid()
        now = now_iso()
        body_bytes = len(received.body.encode())
        item = {
            **keys.lead(tenant_id, lead_id),
            "type": LEAD,
            "id": lead_id,
            "tenant_id": tenant_id,
            "source_id": source_id,
            "received_at": now,
            "updated_at": now,
            "status": LeadStatus.ACCEPTED.value,
            "content_type": received.media_type,
            "size_bytes": body_bytes,
            "payload": received.body,
            "external_id": received.external_id,
            "request_id": received.request_id,
            "GSI1PK": keys.deliveries_of_source(tenant_id, source_id),
            "GSI1SK": lead_id,
            **status_keys(tenant_id, source_id, lead_id, LeadStatus.ACCEPTED),
        }
        claim = {"type": CLAIM, "tenant_id": tenant_id, "lead_id": lead_id}
        claims = [
            self.op.put(
                {
                    **keys.lead_delivery_claim(tenant_id, source_id, received.delivery_digest),
                    **claim,
                    "ttl": int(time.time()) + DELIVERY_CLAIM_SECONDS,
                },
                "attribute_not_exists(PK)",
            )
        ]
        if received.external_id is not None:
            digest = hashlib.sha256(received.external_id.encode()).hexdigest()
            claims.append(
                self.op.put(
                    {**keys.lead_external_claim(tenant_id, source_id, digest), **claim},
                    "attribute_not_exists(PK)",
                )
            )
        event = LeadReceived.create(
            tenant_id,
            Origin.lead_source(source_id, received.request_id),
            LeadReceivedData(
                lead_id=lead_id,
                source_id=source_id,
                received_at=now,
                content_type=received.media_type,
                external_id=received.external_id,
            ),
            now,
        )
        ops = [
            *claims,
            self.op.put(item),
            outbox_put(self.op, keys.lead(tenant_id, lead_id), event),
        ]
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            for index in range(len(claims)):
                existing = cancelled.items[index]
                if cancelled.failed(index) and existing:
                    return Accepted(existing["lead_id"], replayed=True)
            raise
        return Accepted(lead_id, replayed=False)

    # Reads ------------------------------------------------------------------------------
    def get(self, tenant_id: str, lead_id: str, consistent: bool = True) -> Item | None:
        return self.table.get(keys.lead(tenant_id, lead_id), consistent=consistent)

    def delivery(self, tenant_id: str, source_id: str, lead_id: str) -> DeliveryDetail:
        item = self.get(tenant_id, lead_id, consistent=False)
        if item is None or item.get("source_id") != source_id:
            raise NotFound("no such delivery")
        detail = to_delivery(item, detail=True)
        assert isinstance(detail, DeliveryDetail)
        return detail

    def deliveries(
        self,
        tenant_id: str,
        source_id: str,
        status: LeadStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        if status is None:
            listing = ListQuery(
                "deliveries", keys.deliveries_of_source(tenant_id, source_id), "GSI1"
            )
        else:
            listing = ListQuery(
                f"deliveries-{status.value}",
                keys.deliveries_in_status(tenant_id, source_id, status),
                "GSI2",
            )
        return self.table.query(listing, limit, cursor)
