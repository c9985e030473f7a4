"""activity_events: a merged contact's activities move to its survivor, a deleted contact's
are deleted; exactly once, whatever is delivered twice, at once, or after a crash.

Each test merges or deletes contacts through the contacts store, takes the event that change
wrote to the outbox, and hands it to the function's handler as EventBridge delivers it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, TaskStatus, validate_fields
from crm_core.activities.store import MOVE_BATCH
from crm_core.dynamo import Item
from crm_core.errors import Moved
from crm_core.events.consumer import EventInProgress, PoisonEvent
from crm_core.events.envelope import Origin
from crm_core.pagination import ListQuery
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.activities import Stores
from tests.support.api import LambdaContext
from tests.support.events import contact_created, delivered, redelivered
from tests.support.faults import Crashing
from tests.support.lambda_pool import LambdaPool, lambda_pool

TENANT = "acme"
USER = Origin.user("user-1", "req-1")
ASSIGNEE = "user-7"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Every kind of activity a timeline holds: users' and the CRM's own.
KINDS: list[tuple[ActivityType, dict[str, Any]]] = [
    (ActivityType.CALL, {"direction": "outbound", "outcome": "connected", "duration_s": 300}),
    (
        ActivityType.EMAIL,
        {"direction": "inbound", "subject": "Hi", "from": "a@example.com", "to": ["b@example.com"]},
    ),
    (
        ActivityType.MEETING,
        {"starts_at": "2026-02-01T10:00:00Z", "ends_at": "2026-02-01T11:00:00Z"},
    ),
    (ActivityType.NOTE, {"body": "Prefers mornings."}),
    (
        ActivityType.TASK,
        {"subject": "Call back", "due_at": "2030-01-01T09:00:00Z", "assignee_id": ASSIGNEE},
    ),
    (
        ActivityType.TASK,
        {"subject": "Send deck", "due_at": "2026-01-01T09:00:00Z", "status": "completed"},
    ),
    (ActivityType.EMAIL_OPENED, {"subject": "Spring offer"}),
]


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("activity_events")


@pytest.fixture
def crm(table: Table) -> Crm:
    return Crm(table)


class Crm(Stores):
    """The contacts and activities of the test's table, and the events their changes wrote."""

    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self._clock = START

    def log(self, contact_id: str, count: int, tenant: str = TENANT) -> list[Item]:
        """`count` activities of every kind in turn, each an hour after the last one."""
        logged = []
        for n in range(count):
            kind, fields = KINDS[n % len(KINDS)]
            self._clock += timedelta(hours=1)
            logged.append(
                self.activities.log(
                    tenant, contact_id, kind, validate_fields(kind, fields), self._clock, USER
                )
            )
        return logged

    def merge(self, survivor_id: str, merged_id: str, tenant: str = TENANT) -> dict[str, Any]:
        self.contacts.merge(tenant, survivor_id, merged_id, None, USER)
        return self.published(tenant, survivor_id, "ContactMerged")

    def delete(self, contact_id: str, tenant: str = TENANT) -> dict[str, Any]:
        self.contacts.delete(tenant, contact_id, None, USER)
        return self.published(tenant, contact_id, "ContactDeleted")

    def published(self, tenant: str, contact_id: str, detail_type: str) -> dict[str, Any]:
        """The newest `detail_type` event in the contact's outbox, as a rule delivers it."""
        items = [
            i
            for i in self.partition(tenant, contact_id, keys.OUTBOX_PREFIX)
            if i["detail_type"] == detail_type
        ]
        return delivered(items[-1])

    def partition(self, tenant: str, contact_id: str, prefix: str) -> list[Item]:
        listing = ListQuery("partition", keys.contact(tenant, contact_id)["PK"])
        found: list[Item] = []
        cursor = None
        while True:
            page = self.table.query(listing, 100, cursor, newest_first=False, sort_prefix=prefix)
            found += page.items
            if not page.next_cursor:
                return found
            cursor = page.next_cursor

    def timeline(self, contact_id: str, tenant: str = TENANT) -> list[Item]:
        return self.partition(tenant, contact_id, keys.ACTIVITY_PREFIX)

    def summary(self, contact_id: str, tenant: str = TENANT) -> tuple[dict[str, int], Any]:
        contact = self.contacts.get(tenant, contact_id)
        return contact.activity_counts, contact.last_activity_at

    def open_tasks(self, tenant: str = TENANT) -> list[Item]:
        page = self.activities.tasks(tenant, None, TaskStatus.OPEN, 100, None)
        assert page.next_cursor is None
        return page.items


def counts_of(*groups: list[Item]) -> dict[str, int]:
    return dict(Counter(i["activity_type"] for group in groups for i in group))


def stored(item: Item) -> dict[str, Any]:
    """An item as the table holds it (a None attribute is not written)."""
    return {k: v for k, v in item.items() if v is not None}


def without_contact(item: Item) -> dict[str, Any]:
    """What moving an activity must keep: everything but its contact, keys and index keys."""
    return {
        k: v
        for k, v in stored(item).items()
        if k not in ("PK", "SK", "contact_id") and not k.startswith("GSI")
    }


def assert_moved(
    crm: Crm, survivor: str, merged: list[str], own: list[Item], theirs: list[Item]
) -> None:
    """The survivor holds its own and the merged contacts' activities, each once and
    unchanged but for its contact; the merged contacts hold none; the summary adds up."""
    timeline = crm.timeline(survivor)
    ids = [i["id"] for i in timeline]
    assert len(ids) == len(set(ids)) == len(own) + len(theirs)
    assert set(ids) == {i["id"] for i in own + theirs}
    assert all(i["contact_id"] == survivor for i in timeline)
    assert all(i["PK"] == keys.contact(TENANT, survivor)["PK"] for i in timeline)
    by_id = {i["id"]: i for i in timeline}
    assert all(without_contact(by_id[i["id"]]) == without_contact(i) for i in own + theirs)
    for contact in merged:
        assert crm.timeline(contact) == []
    counts, last = crm.summary(survivor)
    assert counts == counts_of(own, theirs)
    assert last == max(i["occurred_at"] for i in own + theirs)
    # Indexes follow: a type's timeline (GSI1) and the open tasks (GSI2, GSI3).
    tasks = crm.activities.timeline(TENANT, survivor, 100, None, types=[ActivityType.TASK])
    assert {i["id"] for i in tasks.items} == {
        i["id"] for i in own + theirs if i["activity_type"] == "task"
    }
    open_tasks = [i for i in own + theirs if i.get("status") == "open"]
    assert open_tasks
    listed = crm.open_tasks()
    assert sorted(i["id"] for i in listed) == sorted(i["id"] for i in open_tasks)
    assert {i["contact_id"] for i in listed} == {survivor}
    mine = crm.activities.tasks(TENANT, ASSIGNEE, TaskStatus.OPEN, 100, None).items
    assert {i["id"] for i in mine} == {i["id"] for i in open_tasks}


def handle(function: ConsumerFunction, event: dict[str, Any]) -> Any:
    return function.handler(event, LambdaContext())


# Merge ----------------------------------------------------------------------------------
def test_a_merge_moves_every_activity_once_even_when_delivered_twice(
    crm: Crm, function: ConsumerFunction
) -> None:
    survivor, merged, bystander = crm.contact(), crm.contact(), crm.contact()
    own = crm.log(survivor, 5)
    theirs = crm.log(merged, 130)  # three transactions of at most 49
    untouched = crm.log(bystander, 3)
    assert len(theirs) > 2 * MOVE_BATCH
    event = crm.merge(survivor, merged)

    first = handle(function, event)
    assert_moved(crm, survivor, [merged], own, theirs)
    second = handle(function, redelivered(event))

    assert first == second == {"moved": 130}
    assert_moved(crm, survivor, [merged], own, theirs)
    assert crm.timeline(bystander) == [stored(i) for i in untouched]
    # The merged id still leads to its activities, at the survivor (a 308).
    with pytest.raises(Moved) as moved:
        crm.activities.get(TENANT, merged, theirs[0]["id"])
    assert moved.value.location == f"/contacts/{survivor}/activities/{theirs[0]['id']}"


def test_a_crash_midway_then_a_redelivery_moves_the_rest_without_duplicates(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    survivor, merged = crm.contact(), crm.contact()
    own = crm.log(survivor, 4)
    theirs = crm.log(merged, 130)
    event = crm.merge(survivor, merged)
    monkeypatch.setattr(
        function.context.table, "client", Crashing(function.context.table.client, after=1)
    )

    with pytest.raises(TimeoutError):
        handle(function, event)

    # One batch moved, with its counts; the rest is still where it was.
    moved = crm.timeline(survivor)
    assert len(moved) == len(own) + MOVE_BATCH
    assert len(crm.timeline(merged)) == len(theirs) - MOVE_BATCH
    assert crm.summary(survivor)[0] == counts_of(moved)

    monkeypatch.undo()
    assert handle(function, redelivered(event)) == {"moved": len(theirs) - MOVE_BATCH}
    assert_moved(crm, survivor, [merged], own, theirs)


def test_activities_reach_the_final_survivor_of_a_chain_of_merges(
    crm: Crm, function: ConsumerFunction
) -> None:
    first, second, final = crm.contact(), crm.contact(), crm.contact()
    of_first = crm.log(first, 20)
    of_second = crm.log(second, 20)
    of_final = crm.log(final, 3)  # the newest activities: the survivor keeps its latest
    into_second = crm.merge(second, first)
    into_final = crm.merge(final, second)

    # The first merge's event is processed after the second merge: it goes straight on.
    assert handle(function, into_second) == {"moved": 20}
    assert len(crm.timeline(final)) == 23
    assert handle(function, into_final) == {"moved": 20}

    assert_moved(crm, final, [first, second], of_final, of_first + of_second)


def test_when_the_survivor_is_gone_the_merged_contacts_activities_are_deleted(
    crm: Crm, function: ConsumerFunction
) -> None:
    survivor, merged = crm.contact(), crm.contact()
    crm.log(survivor, 7)
    crm.log(merged, 60)
    merged_event = crm.merge(survivor, merged)
    deleted_event = crm.delete(survivor)

    assert handle(function, deleted_event) == {"deleted": 7}
    assert handle(function, merged_event) == {"moved": 60}  # deleted, as the survivor was

    assert crm.timeline(merged) == []
    assert crm.timeline(survivor) == []
    assert crm.open_tasks() == []


# Delete ---------------------------------------------------------------------------------
def test_a_deleted_contacts_activities_are_deleted_and_leave_every_index(
    crm: Crm, function: ConsumerFunction
) -> None:
    gone, kept = crm.contact(), crm.contact()
    crm.log(gone, 60)  # more than one BatchWriteItem of 25
    still = crm.log(kept, 7)
    event = crm.delete(gone)

    assert handle(function, event) == {"deleted": 60}
    assert handle(function, redelivered(event)) == {"deleted": 60}

    assert crm.timeline(gone) == []
    assert [i["id"] for i in crm.open_tasks()] == [
        i["id"] for i in still if i.get("status") == "open"
    ]
    for kind in ActivityType:
        listing = ListQuery("of-type", keys.activities_of_type(TENANT, gone, kind.value), "GSI1")
        assert crm.table.query(listing, 10, None).items == []
    assert crm.timeline(kept) == [stored(i) for i in still]
    # The contact's outbox keeps its events until they expire (7 days).
    assert crm.partition(TENANT, gone, keys.OUTBOX_PREFIX)


def test_the_partition_is_read_consistently_so_no_batch_is_moved_or_deleted_twice(
    crm: Crm, function: ConsumerFunction
) -> None:
    """An eventually consistent Query right after a batch's transaction may still list the
    batch: its second move would be refused, a wasted transaction of the move's few tries."""
    survivor, merged, gone = crm.contact(), crm.contact(), crm.contact()
    crm.log(merged, 60)
    crm.log(gone, 30)
    merged_event, deleted_event = crm.merge(survivor, merged), crm.delete(gone)
    queries: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        queries.append(dict(params))

    client = function.context.table.client
    client.meta.events.register("provide-client-params.dynamodb.Query", record, "test-reads")
    try:
        handle(function, merged_event)
        handle(function, deleted_event)
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.Query", "test-reads")

    partitions = {keys.contact(TENANT, c)["PK"] for c in (merged, gone)}
    reads = [q for q in queries if q["ExpressionAttributeValues"][":pk"]["S"] in partitions]
    assert len(reads) == 3 + 3  # two batches and an empty page; two pages and an empty one
    assert all(q.get("ConsistentRead") is True for q in reads)


def test_events_it_does_not_consume_are_poison(crm: Crm, function: ConsumerFunction) -> None:
    event = delivered(
        {
            "detail_type": "ContactCreated",
            "source": "crm.contacts",
            "occurred_at": "2026-11-22T10:00:00.000Z",
            "detail": json.dumps(contact_created()),
        }
    )
    with pytest.raises(PoisonEvent):
        handle(function, event)


# Concurrency: one process per Lambda environment (docs/decisions.md, 17) ------------------
@pytest.fixture(scope="module")
def pool(function: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("activity_events") as running:
        yield running


def _deliver(event: dict[str, Any], barrier: Any) -> str:
    """In a worker: one delivery of `event` to its warm handler."""
    from tests.support import lambda_pool as environment

    barrier.wait(60)
    try:
        return json.dumps(environment._handler(event, LambdaContext()))
    except EventInProgress:
        return "in progress"


def _move(tenant: str, from_id: str, to_id: str, barrier: Any) -> int:
    """In a worker: the store's move itself, past the consumer's deduplication (as a
    replay of an event older than its idempotency record would run it)."""
    # What the worker's function made at its cold start (lambda_pool imported its app).
    from activity_events_consumer.context import store  # type: ignore[import-not-found]

    barrier.wait(60)
    moved: int = store.move_all(tenant, from_id, to_id)
    return moved


def together(pool: LambdaPool, calls: list[tuple[Any, ...]]) -> list[Any]:
    barrier = pool.manager.Barrier(len(calls))
    futures = [pool.executor.submit(call[0], *call[1:], barrier) for call in calls]
    return [f.result(timeout=120) for f in futures]


def test_concurrent_deliveries_of_two_merges_into_one_survivor_move_each_activity_once(
    crm: Crm, function: ConsumerFunction, pool: LambdaPool
) -> None:
    """Each event three times at once, in six environments: both merges of a chain run at
    the same time (and race on the survivor's summary); duplicates are refused while their
    first delivery runs, and get its result when Lambda retries them."""
    first, second, final = crm.contact(), crm.contact(), crm.contact()
    of_first, of_second, of_final = crm.log(first, 60), crm.log(second, 60), crm.log(final, 5)
    into_second = crm.merge(second, first)
    into_final = crm.merge(final, second)

    outcomes = together(
        pool,
        [(_deliver, redelivered(e)) for e in (into_second, into_final) for _ in range(3)],
    )

    assert outcomes.count(json.dumps({"moved": 60})) >= 2, outcomes
    assert set(outcomes) <= {json.dumps({"moved": 60}), "in progress"}
    assert_moved(crm, final, [first, second], of_final, of_first + of_second)
    assert handle(function, redelivered(into_second)) == {"moved": 60}
    assert handle(function, redelivered(into_final)) == {"moved": 60}
    assert_moved(crm, final, [first, second], of_final, of_first + of_second)


def test_concurrent_moves_of_one_merge_move_each_activity_once(crm: Crm, pool: LambdaPool) -> None:
    survivor, merged = crm.contact(), crm.contact()
    own, theirs = crm.log(survivor, 3), crm.log(merged, 150)
    crm.merge(survivor, merged)

    moved = together(pool, [(_move, TENANT, merged, survivor) for _ in range(4)])

    assert sum(moved) == 150, moved
    assert_moved(crm, survivor, [merged], own, theirs)
