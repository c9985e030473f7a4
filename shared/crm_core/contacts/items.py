"""Reading a contact's item, merges included: light enough for any function to import
(the contact models and events are not), so every store reads contacts the same way."""

from __future__ import annotations

from crm_core import keys
from crm_core.dynamo import Item
from crm_core.errors import Conflict, Moved, NotFound
from crm_core.table import Table


def load_contact(
    table: Table, tenant_id: str, contact_id: str, *, then: str = "", consistent: bool = True
) -> Item:
    """The stored contact item; NotFound, or Moved (to its survivor's path, plus `then`)
    when it was merged into another."""
    item = table.get(keys.contact(tenant_id, contact_id), consistent)
    if item is None:
        raise NotFound("no such contact")
    if item.get("type") == keys.REDIRECT_ITEM:
        survivor = item["merged_into"]
        raise Moved(
            f"contact {contact_id} was merged into {survivor}",
            location=f"/contacts/{survivor}{then}",
            merged_into=survivor,
        )
    return item


def load_contact_for_write(table: Table, tenant_id: str, contact_id: str) -> Item:
    """The same, for a write: a merged contact is a Conflict naming its survivor (a write
    is never redirected)."""
    try:
        return load_contact(table, tenant_id, contact_id)
    except Moved as moved:
        raise Conflict(moved.detail, merged_into=moved.extra["merged_into"]) from None
