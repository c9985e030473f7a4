"""Support queues: members, an assignment policy, and the counts that policy needs.

A queue's item keeps, beside its settings, what assignment reads and moves:
- `assign_seq`, moved by every assignment the queue makes, the condition under which a
  case's transaction takes the next member (assignment.py): two cases created at once
  cannot both take the member the cursor names;
- `rr_cursor`, the next member in turn;
- `open_total` and `open#<member>`: the queue's unsolved cases, in all and per assignee,
  ADDed in the transaction of each case change that moves a case in or out of them.
A mailbox (`<namespace>.<mailbox>@<mail domain>`) is claimed by one queue of the tenant in
the queue's own transaction. A queue holding unsolved cases cannot be deleted (409).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, Conflict, NotFound, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.records.case import Queue, QueueCreate
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

QUEUE_ITEM = "case_queue"
MAILBOX_ITEM = "queue_mailbox"
OPEN_PREFIX = "open#"
_SETTINGS = ("name", "members", "assignment", "mailbox")


def open_counts(item: Mapping[str, Any]) -> dict[str, int]:
    """Unsolved cases per member, from the queue's `open#<member>` counters."""
    return {
        name.removeprefix(OPEN_PREFIX): int(value)
        for name, value in item.items()
        if name.startswith(OPEN_PREFIX) and int(value) > 0
    }


def to_queue(item: Mapping[str, Any], mail_domain: str | None = None) -> Queue:
    mailbox = item.get("mailbox")
    address = (
        f"{item['tenant_id'].lower()}.{mailbox}@{mail_domain}" if mailbox and mail_domain else None
    )
    return Queue.model_validate(
        {
            **{k: item.get(k) for k in ("id", "name", "members", "assignment", "mailbox")},
            "address": address,
            "open_cases": int(item.get("open_total", 0)),
            "open_by_member": open_counts(item),
            **{k: item[k] for k in ("created_at", "updated_at", "version")},
        }
    )


def _indexed(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **item,
        "GSI1PK": keys.queues_of_tenant(item["tenant_id"]),
        "GSI1SK": f"{item['name'].casefold()}#{item['id']}",
    }


class QueueStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    def load(self, tenant_id: str, queue_id: str, consistent: bool = True) -> Item:
        item = self.table.get(keys.case_queue(tenant_id, queue_id), consistent=consistent)
        if item is None or item.get("type") != QUEUE_ITEM:
            raise NotFound("no such queue")
        return item

    def find(self, tenant_id: str, queue_id: str) -> Item | None:
        try:
            return self.load(tenant_id, queue_id)
        except NotFound:
            return None

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        listing = ListQuery("queues", keys.queues_of_tenant(tenant_id), "GSI1")
        return self.table.query(listing, limit, cursor, newest_first=False)

    def create(self, tenant_id: str, body: QueueCreate, origin: Origin) -> Item:
        at = self.clock()
        item: dict[str, Any] = {
            **keys.case_queue(tenant_id, new_ulid()),
            "type": QUEUE_ITEM,
            "tenant_id": tenant_id,
            **body.model_dump(mode="json", exclude_none=True),
            "assign_seq": 0,
            "rr_cursor": 0,
            "open_total": 0,
            "created_at": at,
            "updated_at": at,
            "created_by": origin.actor.id,
            "version": 1,
        }
        item["id"] = item["PK"].rsplit("#", 1)[-1]
        item["members"] = list(dict.fromkeys(item.get("members", [])))
        ops = [self.op.put(_indexed(item), "attribute_not_exists(PK)")]
        ops += self._mailbox_moves(tenant_id, item["id"], None, item.get("mailbox"))
        self._transact(ops, item.get("mailbox"))
        return item

    def update(
        self,
        tenant_id: str,
        queue_id: str,
        changes: Mapping[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Item:
        def attempt() -> Item:
            old = self._load_for_write(tenant_id, queue_id, expected)
            new = apply_patch(old, changes)
            new["members"] = list(dict.fromkeys(new.get("members", [])))
            if all(old.get(k) == new.get(k) for k in _SETTINGS):
                return old
            new.update(updated_at=self.clock(), version=old["version"] + 1)
            settings = {k: new.get(k) for k in _SETTINGS}
            ops = [
                self.op.update_changed(
                    {k: old.get(k) for k in (*_SETTINGS, "updated_at", "version", "GSI1SK")}
                    | {"PK": old["PK"], "SK": old["SK"]},
                    {
                        "PK": old["PK"],
                        "SK": old["SK"],
                        **settings,
                        "updated_at": new["updated_at"],
                        "version": new["version"],
                        "GSI1SK": _indexed(new)["GSI1SK"],
                    },
                    "version = :v",
                    v=old["version"],
                )
            ]
            ops += self._mailbox_moves(tenant_id, queue_id, old.get("mailbox"), new.get("mailbox"))
            self._transact(
                ops, new.get("mailbox") if new.get("mailbox") != old.get("mailbox") else None
            )
            return new

        return read_modify_write(attempt, "queue")

    def delete(self, tenant_id: str, queue_id: str, expected: int | None) -> None:
        def attempt() -> None:
            old = self._load_for_write(tenant_id, queue_id, expected)
            if int(old.get("open_total", 0)) > 0:
                raise Conflict(
                    f"the queue holds {old['open_total']} unsolved case(s): solve or move "
                    "them first",
                    open_cases=int(old["open_total"]),
                )
            ops = [
                self.op.delete(
                    keys.case_queue(tenant_id, queue_id),
                    "version = :v AND (attribute_not_exists(open_total) OR open_total = :zero)",
                    v=old["version"],
                    zero=0,
                )
            ]
            ops += self._mailbox_moves(tenant_id, queue_id, old.get("mailbox"), None)
            self._transact(ops, None)

        read_modify_write(attempt, "queue")

    # Assignment and counts (parts of a case's transaction) -------------------------------
    def case_update(
        self,
        tenant_id: str,
        queue_id: str,
        *,
        turn: tuple[int, int] | None = None,
        deltas: Mapping[str | None, int] | None = None,
    ) -> dict[str, Any]:
        """The one Update of the queue a case's transaction makes (a transaction names an
        item once): `turn` = (the assignment count read, the cursor after the member taken)
        moves the cursor on the condition that nobody assigned meanwhile; `deltas` ADDs to
        the unsolved counts, per assignee (None: unassigned), on the condition that the
        queue still exists (a deleted queue is not brought back as counters)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, adds = [], []
        if turn is not None:
            sets = ["rr_cursor = :cursor", "assign_seq = assign_seq + :one"]
            values.update(cursor=turn[1], one=1, seen=turn[0])
        total = sum((deltas or {}).values())
        if total:
            names["#total"] = "open_total"
            adds.append("#total :total")
            values["total"] = total
        for n, (member, delta) in enumerate(sorted((deltas or {}).items(), key=str)):
            if member is not None and delta:
                names[f"#m{n}"] = OPEN_PREFIX + member
                adds.append(f"#m{n} :m{n}")
                values[f"m{n}"] = delta
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "ADD " + ", ".join(adds) if adds else "",
            )
            if part
        )
        condition = "assign_seq = :seen" if turn is not None else "attribute_exists(PK)"
        return self.op.update(
            keys.case_queue(tenant_id, queue_id), expression, condition, names or None, **values
        )

    # --------------------------------------------------------------------------------------
    def _load_for_write(self, tenant_id: str, queue_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, queue_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the queue is at version {item['version']}, not {expected}")
        return item

    def _mailbox_moves(
        self, tenant_id: str, queue_id: str, old: str | None, new: str | None
    ) -> list[dict[str, Any]]:
        if old == new:
            return []
        ops = []
        if old:
            ops.append(
                self.op.delete(keys.queue_mailbox(tenant_id, old), "queue_id = :q", q=queue_id)
            )
        if new:
            claim = {
                **keys.queue_mailbox(tenant_id, new),
                "type": MAILBOX_ITEM,
                "tenant_id": tenant_id,
                "queue_id": queue_id,
                "mailbox": new,
            }
            ops.append(self.op.put(claim, "attribute_not_exists(PK)"))
        return ops

    def _transact(self, ops: list[dict[str, Any]], claimed_mailbox: str | None) -> None:
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            if claimed_mailbox and cancelled.failed(len(ops) - 1):
                raise Conflict(
                    f"the mailbox {claimed_mailbox!r} is another queue's", field="mailbox"
                ) from None
            raise ConcurrentChange("the queue changed meanwhile") from None
