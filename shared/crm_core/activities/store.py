"""Activities in the single table: each in its contact's partition, `SK=ACT#<id>`.

Logging an activity is one transaction: the activity, the contact's summary
(`last_activity_at`, one count per type), the link in its deal's partition if it names a deal
(`keys.deal_activity`), and the `ActivityLogged` outbox item. A timeline page is one Query
of the contact's partition (or, for one type, of GSI1); a deal's timeline is one Query of
its links and one BatchGetItem of the activities. Tasks are also in GSI2 (by assignee and
status), GSI3 (by tenant and status) and, while open and not yet reported overdue, GSI4 (the
overdue check's shards); all ordered by due time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from crm_core import keys
from crm_core.activities.models import (
    FIELDS,
    SYSTEM_TYPES,
    Activity,
    ActivityType,
    TaskStatus,
    validate_fields,
)
from crm_core.clock import format_iso, now_iso
from crm_core.contacts.items import (
    load_contact,
    load_contact_for_write,
    resolve,
    summary_added,
    summary_removed,
)
from crm_core.dynamo import Item
from crm_core.errors import (
    BadRequest,
    ConcurrentChange,
    Conflict,
    Forbidden,
    Moved,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from crm_core.events import activities as events
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import ULID_MAX_MS, new_ulid, ulid_time_prefix
from crm_core.pagination import ListQuery
from crm_core.table import (
    MAX_TRANSACTION_ITEMS,
    Filter,
    Page,
    Table,
    TransactionCancelled,
    read_modify_write,
)

ACTIVITY = "activity"
DEAL_LINK = "deal_activity"
DEAL = "deal_id"
REDIRECT = keys.REDIRECT_ITEM
# A merge moves activities in transactions of at most this many (a Put and a Delete each,
# plus the survivor's summary: 2 * 49 + 1 <= 100; an activity on a deal also moves its
# link, so a batch of those is cut shorter), and of at most this many bytes (a transaction
# carries at most 4 MB).
MOVE_BATCH = (MAX_TRANSACTION_ITEMS - 1) // 2
MOVE_BATCH_BYTES = 3 * 1024 * 1024
DELETE_BATCH = 25
# A filtered timeline page reads up to this many activities per item it returns (at most
# FILTER_READ_MAX), to fill itself: DynamoDB bills what it reads, not what the filter keeps.
FILTER_READ_FACTOR = 4
FILTER_READ_MAX = 400
# Cancelled move transactions (a concurrent mover, a task reported meanwhile) before giving up.
_MOVE_ATTEMPTS = 32
_LOW, _HIGH = "0" * 16, "Z" * 16
_OWN_FIELDS = {
    "PK",
    "SK",
    "type",
    "activity_type",
    "id",
    "tenant_id",
    "contact_id",
    "deal_id",
    "occurred_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "completed_at",
    "overdue_at",
}
_ACTIVITY_ADAPTER: TypeAdapter[Any] | None = None


def to_activity(item: Mapping[str, Any]) -> Any:
    """The API model of a stored activity (one of the `Activity` union's types)."""
    global _ACTIVITY_ADAPTER
    if _ACTIVITY_ADAPTER is None:
        _ACTIVITY_ADAPTER = TypeAdapter(Activity)
    body = keys.without_keys(item)
    return _ACTIVITY_ADAPTER.validate_python({**body, "type": item["activity_type"]})


def _index_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    """The GSI attributes that follow from an activity's fields (None leaves an index)."""
    tenant, contact_id, aid = item["tenant_id"], item["contact_id"], item["id"]
    index: dict[str, Any] = {
        "GSI1PK": keys.activities_of_type(tenant, contact_id, item["activity_type"]),
        "GSI1SK": f"{keys.ACTIVITY_PREFIX}{aid}",
        "GSI2PK": None,
        "GSI2SK": None,
        "GSI3PK": None,
        "GSI3SK": None,
        "GSI4PK": None,
        "GSI4SK": None,
    }
    if item["activity_type"] == ActivityType.TASK:
        due = keys.due_sort_key(item["due_at"], aid)
        status = item["status"]
        index.update(
            GSI2PK=keys.tasks_of_assignee(tenant, item["assignee_id"], status),
            GSI2SK=due,
            GSI3PK=keys.tasks_of_tenant(tenant, status),
            GSI3SK=due,
        )
        if status == TaskStatus.OPEN and not item.get("overdue_at"):
            index.update(GSI4PK=keys.task_due_watch(aid), GSI4SK=due)
    return index


def _stored(item: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in item.items() if not k.startswith("GSI")}
    key = keys.activity(item["tenant_id"], item["contact_id"], item["id"])
    return {**body, **key, **_index_keys(body)}


def new_activity(
    tenant_id: str,
    contact_id: str,
    activity_type: ActivityType,
    fields: Mapping[str, Any],
    occurred_at: datetime | None,
    author: str,
    now: str,
    deal_id: str | None = None,
) -> dict[str, Any]:
    """A new activity's item, keys and index keys included (its id carries its time)."""
    moment = occurred_at or datetime.now(UTC)
    item: dict[str, Any] = {
        "type": ACTIVITY,
        "activity_type": activity_type.value,
        "id": new_ulid(_ms(moment)),
        "tenant_id": tenant_id,
        "contact_id": contact_id,
        "deal_id": deal_id,
        "occurred_at": format_iso(moment),
        "created_by": author,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **fields,
    }
    if activity_type == ActivityType.TASK:
        item.setdefault("assignee_id", author)
        if item["status"] == TaskStatus.COMPLETED:
            item["completed_at"] = now
    return _stored({k: v for k, v in item.items() if v is not None})


def deal_link(activity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item that puts an activity in its deal's timeline (None: it names no deal)."""
    deal_id = activity.get("deal_id")
    if not deal_id:
        return None
    tenant_id = activity["tenant_id"]
    return {
        **keys.deal_activity(tenant_id, deal_id, activity["occurred_at"], activity["id"]),
        "type": DEAL_LINK,
        "tenant_id": tenant_id,
        "deal_id": deal_id,
        "contact_id": activity["contact_id"],
        "activity_id": activity["id"],
    }


@dataclass(frozen=True)
class Editor:
    """Who changes an activity, for the rule: its author or an admin; a task's assignee
    may also change its status."""

    user_id: str
    is_admin: bool


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None = None
    until: datetime | None = None

    def sort_between(self) -> tuple[str, str]:
        """Bounds of `ACT#<id>` keys: ids begin with their time (since included, until not)."""
        if self.since and self.until and self.since >= self.until:
            raise BadRequest("since must be before until")
        low = ulid_time_prefix(_ms(self.since)) + _LOW if self.since else "0" * 26
        high = ulid_time_prefix(max(_ms(self.until) - 1, 0)) + _HIGH if self.until else "Z" * 26
        return keys.ACTIVITY_PREFIX + low, keys.ACTIVITY_PREFIX + high


def _ms(moment: datetime) -> int:
    return min(max(int(moment.timestamp() * 1000), 0), ULID_MAX_MS)


class ActivityStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    # Contacts ---------------------------------------------------------------------------
    def contact(
        self, tenant_id: str, contact_id: str, *, then: str = "", consistent: bool = True
    ) -> Item:
        """The contact an activity belongs to: NotFound, or Moved (its survivor's `then`
        path) when it was merged."""
        return load_contact(self.table, tenant_id, contact_id, then=then, consistent=consistent)

    def _contact_for_write(self, tenant_id: str, contact_id: str) -> Item:
        return load_contact_for_write(self.table, tenant_id, contact_id)

    # Log --------------------------------------------------------------------------------
    def log(
        self,
        tenant_id: str,
        contact_id: str,
        activity_type: ActivityType,
        fields: Mapping[str, Any],
        occurred_at: datetime | None,
        origin: Origin,
        *,
        extra_writes: Callable[[Item], Sequence[dict[str, Any]]] | None = None,
        deal_id: str | None = None,
    ) -> Item:
        """Record an activity on a contact (any type: the route admits only users' types).

        `fields` are the type's fields in stored form (`validate_fields`). `also` gives the
        caller's parts of the same transaction, from the new activity (the lead processor's
        Update of its lead, naming the activity); if one is refused, nothing is written and
        the error is a Conflict. `deal_id` names the tenant's deal it is about (else
        Unprocessable), whose timeline it joins."""
        if deal_id is not None:
            self._deal_must_exist(tenant_id, deal_id)
        now = now_iso()
        stored = new_activity(
            tenant_id,
            contact_id,
            activity_type,
            fields,
            occurred_at,
            origin.actor.id,
            now,
            deal_id=deal_id,
        )
        event = events.ActivityLogged.create(
            tenant_id, origin, events.ActivityData(activity=events.ActivityFacts.of(stored)), now
        )
        put = self.op.put(stored, "attribute_not_exists(PK)")

        extra = list(extra_writes(stored)) if extra_writes else []
        links = self._link_moves(None, stored)

        def attempt() -> None:
            contact = self._contact_for_write(tenant_id, contact_id)
            summary = summary_added(
                self.op, contact, {activity_type.value: 1}, stored["occurred_at"]
            )
            ops = [put, summary, *extra, *links]
            self._write(ops, contact, event, callers=range(2, 2 + len(extra)))

        # A later activity logged meanwhile moves the summary: read the contact again.
        read_modify_write(attempt, "contact")
        return stored

    # Read -------------------------------------------------------------------------------
    def get(self, tenant_id: str, contact_id: str, activity_id: str) -> Item:
        item = self.table.get(keys.activity(tenant_id, contact_id, activity_id))
        if item is not None:
            return item
        # Not here: perhaps the contact was merged and its activities moved (a 308 to the
        # same activity under the survivor), else a 404 for a missing contact or activity.
        self.contact(tenant_id, contact_id, then=f"/activities/{activity_id}")
        raise NotFound("no such activity on this contact")

    def _load_for_write(
        self, tenant_id: str, contact_id: str, activity_id: str, expected: int | None
    ) -> Item:
        try:
            item = self.get(tenant_id, contact_id, activity_id)
        except Moved as moved:
            raise Conflict(moved.detail, merged_into=moved.extra["merged_into"]) from None
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(
                f"the activity is at version {item['version']}, not {expected}"
            )
        return item

    # Change -----------------------------------------------------------------------------
    def update(
        self,
        tenant_id: str,
        contact_id: str,
        activity_id: str,
        changes: Mapping[str, Any],
        expected: int | None,
        editor: Editor,
        origin: Origin,
    ) -> Item:
        def attempt() -> Item:
            old = self._load_for_write(tenant_id, contact_id, activity_id, expected)
            activity_type = ActivityType(old["activity_type"])
            if activity_type in SYSTEM_TYPES:
                raise Unprocessable(
                    f"{activity_type} activities are recorded by the CRM and cannot be changed"
                )
            _may_change(old, set(changes), editor)
            new = _patched(old, activity_type, {k: v for k, v in changes.items() if k != DEAL})
            if DEAL in changes:
                new[DEAL] = changes[DEAL]
                if new[DEAL] is None:
                    del new[DEAL]
                elif new[DEAL] != old.get(DEAL):
                    self._deal_must_exist(tenant_id, new[DEAL])
            if new == old:
                return old
            new.update(updated_at=now_iso(), version=old["version"] + 1)
            new = _stored(new)
            changed = sorted(
                k
                for k in set(new) | set(old)
                if new.get(k) != old.get(k)
                and not k.startswith("GSI")
                and k not in ("updated_at", "version")
            )
            event = events.ActivityUpdated.create(
                tenant_id,
                origin,
                events.ActivityChangeData(activity=events.ActivityFacts.of(new), changed=changed),
                new["updated_at"],
            )
            ops = [self.op.update_changed(old, new, "version = :v", v=old["version"])]
            self._write([*ops, *self._link_moves(old, new)], new, event)
            return new

        return read_modify_write(attempt, "activity")

    def delete(
        self,
        tenant_id: str,
        contact_id: str,
        activity_id: str,
        expected: int | None,
        editor: Editor,
        origin: Origin,
    ) -> None:
        def attempt() -> None:
            old = self._load_for_write(tenant_id, contact_id, activity_id, expected)
            if not editor.is_admin and (
                old["activity_type"] in SYSTEM_TYPES or old["created_by"] != editor.user_id
            ):
                raise Forbidden("only its author or an admin may delete an activity")
            contact = self._contact_for_write(tenant_id, contact_id)
            summary = summary_removed(
                self.op,
                contact,
                old["activity_type"],
                old["occurred_at"],
                lambda: self._newest_other(contact["tenant_id"], contact["id"], old["id"]),
            )
            event = events.ActivityDeleted.create(
                tenant_id, origin, events.ActivityData(activity=events.ActivityFacts.of(old))
            )
            ops = [self.op.delete(_key(old), "version = :v", v=old["version"]), summary]
            self._write([*ops, *self._link_moves(old, None)], contact, event)

        read_modify_write(attempt, "activity")

    def _newest_other(self, tenant_id: str, contact_id: str, activity_id: str) -> str | None:
        """When the newest activity of the contact but `activity_id` happened, if any."""
        listing = ListQuery("timeline", keys.contact(tenant_id, contact_id)["PK"])
        page = self.table.query(listing, 2, None, sort_prefix=keys.ACTIVITY_PREFIX)
        newest = next((i for i in page.items if i["id"] != activity_id), None)
        return None if newest is None else str(newest["occurred_at"])

    # Timeline and tasks -----------------------------------------------------------------
    def timeline(
        self,
        tenant_id: str,
        contact_id: str,
        limit: int,
        cursor: str | None,
        types: Iterable[ActivityType] = (),
        window: TimeRange = TimeRange(),
    ) -> Page:
        """A contact's activities, newest first: one Query per page (plus the contact's
        read, for the 404 of an unknown contact and the 308 of a merged one)."""
        wanted = sorted(set(types))
        between = window.sort_between()
        self.contact(tenant_id, contact_id, then="/timeline", consistent=False)
        if len(wanted) == 1:
            listing = ListQuery(
                "timeline-of-type",
                keys.activities_of_type(tenant_id, contact_id, wanted[0].value),
                "GSI1",
            )
            return self.table.query(listing, limit, cursor, sort_between=between)
        listing = ListQuery("timeline", keys.contact(tenant_id, contact_id)["PK"])
        where = None
        if wanted:
            placeholders = {f":t{n}": t.value for n, t in enumerate(wanted)}
            where = Filter(
                f"#at IN ({', '.join(placeholders)})",
                {"#at": "activity_type"},
                {k[1:]: v for k, v in placeholders.items()},
                min(limit * FILTER_READ_FACTOR, FILTER_READ_MAX),
            )
        return self.table.query(listing, limit, cursor, sort_between=between, where=where)

    def deal_timeline(self, tenant_id: str, deal_id: str, limit: int, cursor: str | None) -> Page:
        """A deal's activities, newest first: one Query of its links, then one BatchGetItem
        of the page's activities (in their contacts' partitions). A first page without links
        reads the deal instead, for the 404 of a deal the tenant does not have; a deleted
        deal's timeline is kept, as its history is."""
        listing = ListQuery("deal-timeline", keys.deal_partition(tenant_id, deal_id))
        links = self.table.query(listing, limit, cursor, sort_prefix=keys.ACTIVITY_PREFIX)
        if not links.items:
            if cursor is None:
                deal = self.table.get(keys.deal(tenant_id, deal_id), consistent=False)
                if deal is None or deal.get("type") != keys.DEAL_ITEM:
                    raise NotFound("no such deal")
            return links
        found = self.table.batch_get(
            [keys.activity(tenant_id, i["contact_id"], i["activity_id"]) for i in links.items]
        )
        # An activity deleted (or moved by a merge) since its link was read is left out.
        return Page(items=found, next_cursor=links.next_cursor)

    def tasks(
        self,
        tenant_id: str,
        assignee_id: str | None,
        status: TaskStatus,
        limit: int,
        cursor: str | None,
        due_after: datetime | None = None,
        due_before: datetime | None = None,
    ) -> Page:
        """Tasks in one status, earliest due first: of one assignee (GSI2) or of the whole
        tenant (GSI3). `due_after` is included, `due_before` is not."""
        if due_after and due_before and due_after >= due_before:
            raise BadRequest("due_after must be before due_before")
        if assignee_id:
            listing = ListQuery(
                "tasks-of-assignee",
                keys.tasks_of_assignee(tenant_id, assignee_id, status.value),
                "GSI2",
            )
        else:
            listing = ListQuery("tasks", keys.tasks_of_tenant(tenant_id, status.value), "GSI3")
        # Sort keys are "<due_at>#<id>": every time sorts between "0" and "~", and "<t>#..."
        # above "<t>" (so due_before excludes tasks due exactly then).
        low = format_iso(due_after) if due_after else "0"
        high = format_iso(due_before) if due_before else "~"
        return self.table.query(
            listing, limit, cursor, newest_first=False, sort_between=(low, high)
        )

    # Overdue tasks (the daily check) ----------------------------------------------------
    def report_overdue(self, now: str, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Emit TaskOverdue once for every open task due before `now` not yet reported: a
        Query of each GSI4 shard below `now`. Each report takes the task out of GSI4 in the
        same transaction as its event, so a repeated or concurrent run reports nothing twice.
        Returns how many it reported; stops early when `keep_going()` turns false."""
        reported = 0
        for shard in range(keys.TASK_DUE_SHARDS):
            for item in self.table.query_all(
                "GSI4", keys.task_due_shard(shard), sort_below=now, consistent=False
            ):
                if not keep_going():
                    return reported
                reported += self._report_overdue(item, now)
        return reported

    def _report_overdue(self, index_item: Item, now: str) -> int:
        task = index_item
        origin = Origin.system("task_overdue")
        marked = {**task, "overdue_at": now, "version": task["version"] + 1}
        event = events.TaskOverdue.create(
            task["tenant_id"], origin, events.TaskData(task=events.ActivityFacts.of(marked)), now
        )
        ops = [
            # A new version: a write that read the task before (a reschedule, a merge's
            # move) must read it again, or it would put it back in GSI4 unreported.
            self.op.update(
                _key(task),
                "SET overdue_at = :now, version = :next REMOVE GSI4PK, GSI4SK",
                "version = :v AND #status = :open AND due_at = :due"
                " AND attribute_not_exists(overdue_at)",
                {"#status": "status"},
                now=now,
                v=task["version"],
                next=task["version"] + 1,
                open=TaskStatus.OPEN.value,
                due=task["due_at"],
            ),
            outbox_put(self.op, keys.contact(task["tenant_id"], task["contact_id"]), event),
        ]
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            return 0  # changed (completed, rescheduled, deleted, reported) since the Query
        return 1

    # Merge and delete of contacts (the activity_events consumer) -------------------------
    def move_all(self, tenant_id: str, from_id: str, to_id: str) -> int:
        """Move every activity of a merged contact to its survivor, in transactions that
        also add their counts to the survivor's summary and point their deal links at the
        survivor. Repeating it moves nothing twice:
        each activity leaves the merged contact in the transaction that writes it anew.
        Follows the survivor's own merges; deletes the activities if the survivor is gone."""
        moved = 0
        attempts = 0
        while True:
            survivor = self._final_survivor(tenant_id, to_id)
            if survivor is None:
                return moved + self.delete_all(tenant_id, from_id)
            batch = self._move_batch(tenant_id, from_id)
            if not batch:
                return moved
            counts: dict[str, int] = {}
            ops: list[dict[str, Any]] = []
            for n, old in enumerate(batch):
                new = _stored({**old, "contact_id": survivor["id"]})
                # Its deal's link names the survivor from the same transaction on.
                parts = [
                    self.op.put(new, "attribute_not_exists(PK)"),
                    self.op.delete(_key(old), "version = :v", v=old["version"]),
                    *self._link_moves(old, new),
                ]
                if len(ops) + len(parts) + 1 > MAX_TRANSACTION_ITEMS:
                    batch = batch[:n]  # the rest in the next transaction
                    break
                ops += parts
                counts[old["activity_type"]] = counts.get(old["activity_type"], 0) + 1
            latest = max(i["occurred_at"] for i in batch)
            ops.append(summary_added(self.op, survivor, counts, latest))
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                # A concurrent mover, an activity changed, or the survivor changed: re-read.
                attempts += 1
                if attempts >= _MOVE_ATTEMPTS:
                    raise
                continue
            moved += len(batch)

    def _final_survivor(self, tenant_id: str, contact_id: str) -> Item | None:
        return resolve(self.table, tenant_id, contact_id)

    def _move_batch(self, tenant_id: str, contact_id: str) -> list[Item]:
        listing = ListQuery("timeline", keys.contact(tenant_id, contact_id)["PK"])
        # Consistent: an eventually consistent read may still list the batch just moved,
        # and each such read costs a cancelled transaction of the move's few attempts.
        page = self.table.query(
            listing,
            MOVE_BATCH,
            None,
            newest_first=False,
            sort_prefix=keys.ACTIVITY_PREFIX,
            consistent=True,
        )
        batch: list[Item] = []
        size = 0
        for item in page.items:
            size += self.table.op.item_bytes(item)
            if batch and size > MOVE_BATCH_BYTES:
                break
            batch.append(item)
        return batch

    def delete_all(self, tenant_id: str, contact_id: str) -> int:
        """Delete every activity of a deleted contact, and their deal links (BatchWriteItem,
        25 at a time)."""
        partition = keys.contact(tenant_id, contact_id)["PK"]
        deleted = 0
        while True:
            listing = ListQuery("timeline", partition)
            page = self.table.query(
                listing,
                DELETE_BATCH,
                None,
                newest_first=False,
                sort_prefix=keys.ACTIVITY_PREFIX,
                consistent=True,
            )
            if not page.items:
                return deleted
            # The deals' links go first: stopped between the two, the retry finds the
            # activities again and finishes; the other way round it would find none, and
            # their links would stay behind in the deals' timelines.
            links = [link for i in page.items if (link := deal_link(i)) is not None]
            self.table.batch_delete([_key(link) for link in links])
            self.table.batch_delete([_key(i) for i in page.items])
            deleted += len(page.items)

    # Deals ------------------------------------------------------------------------------
    def _deal_must_exist(self, tenant_id: str, deal_id: str) -> None:
        """An activity names only a deal of its tenant (another tenant's is one it has not)."""
        item = self.table.get(keys.deal(tenant_id, deal_id))
        if item is None or item.get("type") != keys.DEAL_ITEM:
            raise Unprocessable(
                f"no such deal: {deal_id}",
                errors=[{"loc": ["body", DEAL], "msg": "no such deal"}],
            )

    def _link_moves(self, old: Item | None, new: Item | None) -> list[dict[str, Any]]:
        """The writes that keep an activity's deal link as the activity goes from `old` to
        `new` (None: not there): none, a Put, a Delete, or both when it moves."""
        before = deal_link(old) if old is not None else None
        after = deal_link(new) if new is not None else None
        if before == after:
            return []
        ops = []
        if before is not None and (after is None or _key(before) != _key(after)):
            ops.append(self.op.delete(_key(before)))
        if after is not None:
            ops.append(self.op.put(after))
        return ops

    # Writes -----------------------------------------------------------------------------
    def _write(
        self, ops: list[dict[str, Any]], owner: Item, event: DomainEvent, callers: range = range(0)
    ) -> None:
        """The operations, then the event's outbox item, as one transaction; `callers` are
        the indexes of the caller's own parts (`log`'s `also`)."""
        key = keys.contact(owner["tenant_id"], owner.get("contact_id") or owner["id"])
        ops = [*ops, outbox_put(self.op, key, event)]
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise ConcurrentChange("the activity was changed by someone else") from None
            if any(cancelled.failed(index) for index in callers):
                # Not ours to retry: the caller's condition no longer holds.
                raise Conflict("a part the caller added to the transaction was refused") from None
            # The contact's summary: it changed (a later activity), or the contact went away.
            raise _SummaryChanged("the contact changed") from None


def _key(item: Mapping[str, Any]) -> dict[str, str]:
    return {"PK": item["PK"], "SK": item["SK"]}


class _SummaryChanged(ConcurrentChange):
    """The contact's summary moved between our read and our write: read it again."""


def _may_change(item: Item, fields: set[str], editor: Editor) -> None:
    if editor.is_admin or item["created_by"] == editor.user_id:
        return
    if item["activity_type"] == ActivityType.TASK and item.get("assignee_id") == editor.user_id:
        if fields <= {"status"}:
            return
        raise Forbidden("as its assignee you may change only the task's status")
    raise Forbidden("only its author or an admin may change an activity")


def _patched(old: Item, activity_type: ActivityType, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The activity after the patch, its fields checked by the type's rules."""
    model = FIELDS[activity_type]
    allowed = {f.alias or name for name, f in model.model_fields.items()}
    foreign = sorted(set(changes) - allowed)
    if foreign:
        raise Unprocessable(
            f"{', '.join(foreign)} do not apply to a {activity_type.value}",
            errors=[
                {"loc": ["body", name], "msg": f"not a field of a {activity_type.value}"}
                for name in foreign
            ],
        )
    current = {name: old[name] for name in allowed if name in old}
    merged = {**current, **changes}
    merged = {k: v for k, v in merged.items() if v is not None}
    try:
        fields = validate_fields(activity_type, merged)
    except ValidationError as error:
        raise Unprocessable(
            "the change breaks the activity's rules",
            errors=[
                {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in error.errors()
            ],
        ) from None
    new = {k: v for k, v in old.items() if k in _OWN_FIELDS or k.startswith("GSI")}
    new.update(fields)
    if activity_type == ActivityType.TASK:
        _task_transitions(old, new)
    return new


def _task_transitions(old: Item, new: dict[str, Any]) -> None:
    if new["status"] == TaskStatus.COMPLETED and old["status"] != TaskStatus.COMPLETED:
        new["completed_at"] = now_iso()
    elif new["status"] != TaskStatus.COMPLETED:
        new.pop("completed_at", None)
    if not new.get("assignee_id"):
        raise Unprocessable(
            "a task needs an assignee",
            errors=[{"loc": ["body", "assignee_id"], "msg": "cannot be null"}],
        )
    # A new due time or a reopened task is watched again for being overdue.
    if new["due_at"] != old["due_at"] or (
        new["status"] == TaskStatus.OPEN and old["status"] != TaskStatus.OPEN
    ):
        new.pop("overdue_at", None)
