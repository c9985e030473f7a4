"""The contact item's storage form, and its one owner: how it is read (merges included), stored
(key, fields, index keys), guarded, and partly updated by the other capabilities that change
it in their own transactions (an activity's summary, a score). Light enough for any function
to import (the contact models and events are not), so every store reads and writes contacts
the same way (docs/decisions.md, 74)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crm_core import keys
from crm_core.dynamo import Item
from crm_core.errors import Conflict, Moved, NotFound
from crm_core.scores import state as scoring
from crm_core.table import Op, Table

# A merged contact's id redirects to the contact it was merged into, which may be merged in
# turn: a chain as long as the merges made one after another. Every reader follows it to its
# end (one GetItem a link), so an id in an old email's unsubscribe link, a bookmark or an
# integration still reaches the person. The bound stops only a walk that would never end
# (a cycle no merge makes); reaching it is a 409 that says so.
MAX_MERGE_HOPS = 1000


class MergeChainTooLong(Conflict):
    """The redirects from a merged contact's id do not end (a cycle, or over
    MAX_MERGE_HOPS merges): nothing can be read or written through that id."""


def resolve(
    table: Table, tenant_id: str, contact_id: str, *, consistent: bool = True
) -> Item | None:
    """The contact item of `contact_id`, or of the contact at the end of its chain of
    merges; None when there is none (deleted, or never in this tenant)."""
    seen = {contact_id}
    for _ in range(MAX_MERGE_HOPS + 1):
        item = table.get(keys.contact(tenant_id, contact_id), consistent)
        if item is None or item.get("type") != keys.REDIRECT_ITEM:
            return item if item is not None and item.get("type") == keys.CONTACT_ITEM else None
        contact_id = str(item["merged_into"])
        if contact_id in seen:
            break
        seen.add(contact_id)
    raise MergeChainTooLong(
        f"the merges from this contact do not end (a cycle, or over {MAX_MERGE_HOPS}): "
        "read or change the contact that holds the person's data by its own id"
    )


def load_contact(
    table: Table, tenant_id: str, contact_id: str, *, then: str = "", consistent: bool = True
) -> Item:
    """The stored contact item; NotFound, or Moved (to the path of the contact at the end
    of its chain of merges, plus `then`) when it was merged into another."""
    item = table.get(keys.contact(tenant_id, contact_id), consistent)
    return contact_as_read(table, tenant_id, contact_id, item, then=then, consistent=consistent)


def contact_as_read(
    table: Table,
    tenant_id: str,
    contact_id: str,
    item: Item | None,
    *,
    then: str = "",
    consistent: bool = True,
) -> Item:
    """`load_contact` for the item at the contact's key as the caller read it (None: none
    there), with other items in the same call: a merged contact's survivor is still read."""
    if item is None or item.get("type") not in (keys.CONTACT_ITEM, keys.REDIRECT_ITEM):
        raise NotFound("no such contact")
    if item.get("type") == keys.CONTACT_ITEM:
        return item
    survivor = resolve(table, tenant_id, str(item["merged_into"]), consistent=consistent)
    if survivor is None:
        raise NotFound("no such contact: it was merged into one that was deleted since")
    raise Moved(
        f"contact {contact_id} was merged into {survivor['id']}",
        location=f"/contacts/{survivor['id']}{then}",
        merged_into=survivor["id"],
    )


def load_contact_for_write(table: Table, tenant_id: str, contact_id: str) -> Item:
    """The same, for a write: a merged contact is a Conflict naming its survivor (a write
    is never redirected)."""
    try:
        return load_contact(table, tenant_id, contact_id)
    except Moved as moved:
        raise Conflict(moved.detail, merged_into=moved.extra["merged_into"]) from None


def index_keys(item: Item) -> dict[str, Any]:
    """The GSI attributes that follow from a contact's fields (absent ones keep indexes
    sparse). GSI2 ranks it within its stage by its score (`crm_core.scores.state`)."""
    tenant, cid = item["tenant_id"], item["id"]
    owner, company = item.get("owner_id"), item.get("company_id")
    return {
        "GSI1PK": keys.contacts_by_updated(tenant),
        "GSI1SK": keys.time_sort_key(item["updated_at"], cid),
        "GSI2PK": keys.contacts_by_stage(tenant, item["lifecycle_stage"], scoring.rank(item)),
        "GSI2SK": scoring.sort_key(item),
        "GSI3PK": keys.contacts_by_owner(tenant, owner) if owner else None,
        "GSI3SK": keys.time_sort_key(item["updated_at"], cid) if owner else None,
        "GSI4PK": keys.contacts_by_company(tenant, company) if company else None,
        "GSI4SK": keys.time_sort_key(item["updated_at"], cid) if company else None,
    }


def stored(item: Item) -> dict[str, Any]:
    """The whole item of a contact: its key, its fields and its index keys."""
    body = keys.without_keys(item)
    return {**keys.contact(item["tenant_id"], item["id"]), **body, **index_keys(item)}


def write_guard(item: Item) -> tuple[str, dict[str, Any]]:
    """The condition of a write of a contact read as `item`: the same version, and the same
    score (scoring moves the score and its index keys without a new version, and a write
    built on an older score would put the contact back in its old rank)."""
    seq = (item.get(scoring.ATTRIBUTE) or {}).get("seq")
    if seq is None:
        return f"version = :v AND attribute_not_exists({scoring.ATTRIBUTE})", {"v": item["version"]}
    return f"version = :v AND {scoring.ATTRIBUTE}.seq = :s", {"v": item["version"], "s": seq}


# Writes -------------------------------------------------------------------------------------
def revision_update(op: Op, old: Item, new: Item) -> dict[str, Any]:
    """The Update that stores `new`, a revision of the contact read as `old`, if it is still
    as read (`write_guard`): the contacts' own edits, a merge, a score and its promotion."""
    condition, values = write_guard(old)
    return op.update_changed(old, stored(new), condition, **values)


def count_attribute(activity_type: str) -> str:
    """The summary's count of one activity type."""
    return f"{keys.ACTIVITY_COUNT_PREFIX}{activity_type}"


def summary_added(
    op: Op, contact: Item, counts: Mapping[str, int], latest: str | None
) -> dict[str, Any]:
    """The Update of a contact's activity summary: counts added, `last_activity_at` moved
    forward to `latest` if later. The contact must still be a contact (not deleted or
    merged), and its `last_activity_at` as read, so a concurrent later one is never
    overwritten."""
    names = {"#type": "type"}
    adds = []
    values: dict[str, Any] = {"contact": keys.CONTACT_ITEM}
    for n, (activity_type, delta) in enumerate(sorted(counts.items())):
        names[f"#c{n}"] = count_attribute(activity_type)
        values[f"c{n}"] = delta
        adds.append(f"#c{n} :c{n}")
    condition = "#type = :contact"
    previous = contact.get("last_activity_at")
    sets = ""
    if latest and (previous is None or latest > previous):
        names["#last"] = "last_activity_at"
        sets = "SET #last = :latest "
        values["latest"] = latest
        if previous is None:
            condition += " AND attribute_not_exists(#last)"
        else:
            condition += " AND #last = :previous"
            values["previous"] = previous
    expression = sets + ("ADD " + ", ".join(adds) if adds else "")
    return op.update(_key(contact), expression.strip(), condition, names, **values)


def summary_removed(
    op: Op,
    contact: Item,
    activity_type: str,
    occurred_at: str,
    newest_other: Callable[[], str | None],
) -> dict[str, Any]:
    """The Update of a contact's activity summary after one activity (of `activity_type`, at
    `occurred_at`) went away. If it was the latest, `last_activity_at` falls back to
    `newest_other()` (the time of the newest one left, or None), guarded as read."""
    names = {"#type": "type", "#count": count_attribute(activity_type)}
    values: dict[str, Any] = {"contact": keys.CONTACT_ITEM, "minus": -1}
    condition = "#type = :contact"
    expression = "ADD #count :minus"
    previous = contact.get("last_activity_at")
    if previous is not None and previous <= occurred_at:
        newest = newest_other()
        condition += " AND #last = :previous"
        names["#last"] = "last_activity_at"
        values["previous"] = previous
        if newest is None:
            expression += " REMOVE #last"
        else:
            expression += " SET #last = :latest"
            values["latest"] = newest
    return op.update(_key(contact), expression, condition, names, **values)


def _key(contact: Item) -> dict[str, str]:
    return keys.contact(str(contact["tenant_id"]), str(contact["id"]))
