"""A campaign's recipients: one item per contact of the audience, in the campaign's
partition, with its status also in GSI3 so that `?status=` is one Query.

Every status change is a conditional Update of the recipient and, in the same transaction,
an ADD to the campaign's counter it moves (`mark`): a duplicate delivery fails the condition
and counts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crm_core import keys
from crm_core.campaigns.campaign_models import (
    STATUS_RANK,
    Recipient,
    RecipientPage,
    RecipientStatus,
    counter,
)
from crm_core.dynamo import Item
from crm_core.pagination import ListQuery
from crm_core.table import Op, Table

RECIPIENT_ITEM = "campaign_recipient"
# A message on the send queue names at most this many recipients (its size stays far
# below SQS's 256 KB, and one sender invocation's work stays bounded).
GROUP_SIZE = 50

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SendBatch(BaseModel):
    """One message of the send queue: recipients of one send of one campaign (the
    dispatcher writes it, the sender reads it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: Id
    campaign_id: Id
    dispatch_id: Id
    contact_ids: list[Id] = Field(min_length=1, max_length=GROUP_SIZE)


def status_keys(
    tenant_id: str, campaign_id: str, contact_id: str, status: RecipientStatus
) -> dict[str, Any]:
    return {
        "status": status.value,
        "status_rank": STATUS_RANK[status],
        "GSI3PK": keys.recipients_in_status(tenant_id, campaign_id, status.value),
        "GSI3SK": contact_id,
    }


def new_recipient(
    tenant_id: str, campaign_id: str, dispatch_id: str, contact: Mapping[str, Any], now: str
) -> Item:
    """A queued recipient for `contact` (an item of the audience), as taken at `now`."""
    contact_id = contact["id"]
    item: Item = {
        **keys.recipient(tenant_id, campaign_id, contact_id),
        "type": RECIPIENT_ITEM,
        "tenant_id": tenant_id,
        "campaign_id": campaign_id,
        "dispatch_id": dispatch_id,
        "contact_id": contact_id,
        "queued_at": now,
        **status_keys(tenant_id, campaign_id, contact_id, RecipientStatus.QUEUED),
    }
    if contact.get("email"):
        item["email"] = contact["email"]
    return item


def mark(
    op: Op,
    tenant_id: str,
    campaign_id: str,
    contact_id: str,
    status: RecipientStatus,
    *,
    condition: str,
    values: Mapping[str, Any] | None = None,
    sets: Mapping[str, Any] | None = None,
    count: str | None = None,
    move_status: bool = True,
) -> list[dict[str, Any]]:
    """The transaction parts of one recipient change: the recipient's Update (`sets`, and its
    status when `move_status`) under `condition` (names `#status`, `#at` = `<status>_at` are
    defined; `values` are its `:name` values), and the campaign's `ADD count_<count> 1`."""
    assignments: dict[str, Any] = dict(sets or {})
    if move_status:
        assignments.update(status_keys(tenant_id, campaign_id, contact_id, status))
    names: dict[str, str] = {}
    parts = []
    for i, (name, value) in enumerate(assignments.items()):
        names[f"#s{i}"] = name
        parts.append((f"#s{i}", f"s{i}", value))
    expression = "SET " + ", ".join(f"{n} = :{v}" for n, v, _ in parts) if parts else ""
    # DynamoDB refuses names a request does not use: define the condition's only if named.
    for placeholder, name in (("#status", "status"), ("#at", f"{status.value}_at")):
        if placeholder in condition:
            names[placeholder] = name
    recipient = op.update(
        keys.recipient(tenant_id, campaign_id, contact_id),
        expression,
        condition,
        names,
        **{v: value for _, v, value in parts},
        **(values or {}),
    )
    operations = [recipient]
    if count is not None:
        operations.append(
            op.update(
                keys.campaign(tenant_id, campaign_id),
                "ADD #count :one",
                None,
                {"#count": counter(count)},
                one=1,
            )
        )
    return operations


def contact_ids_of(message: Mapping[str, Any]) -> list[str]:
    ids = message.get("contact_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("a send message names its recipients in contact_ids")
    if len(ids) > GROUP_SIZE:
        raise ValueError(f"a send message names at most {GROUP_SIZE} recipients")
    return ids


_RECIPIENT_FIELDS = tuple(Recipient.model_fields)


def to_recipient(item: Item) -> Recipient:
    return Recipient.model_validate({k: item[k] for k in _RECIPIENT_FIELDS if k in item})


def recipient_page(
    table: Table,
    tenant_id: str,
    campaign_id: str,
    status: RecipientStatus | None,
    limit: int,
    cursor: str | None,
) -> RecipientPage:
    """One page of a campaign's recipients by contact id, all or those in `status`: one
    Query of the campaign's partition or of GSI3."""
    if status is None:
        listing = ListQuery("recipients", keys.campaign_partition(tenant_id, campaign_id))
        page = table.query(
            listing, limit, cursor, newest_first=False, sort_prefix=keys.RECIPIENT_PREFIX
        )
    else:
        partition = keys.recipients_in_status(tenant_id, campaign_id, status.value)
        page = table.query(
            ListQuery("recipients", partition, index="GSI3"), limit, cursor, newest_first=False
        )
    return RecipientPage(items=[to_recipient(i) for i in page.items], next_cursor=page.next_cursor)
