"""Cases in the table (CaseStore, QueueStore, SlaPolicyStore on moto): each change one
transaction, the lists each one Query, assignment fair, alarms announced once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core import keys
from crm_core.cases.case_store import CaseStore
from crm_core.cases.sla_policy import DEFAULT_POLICY, SlaPolicyBody
from crm_core.clock import format_iso
from crm_core.errors import Conflict, Unprocessable
from crm_core.events.envelope import Origin
from crm_core.records.case import CaseCreate, QueueCreate, ReplyCreate
from crm_core.table import Table
from tests.support.aws_calls import count_calls

TENANT = "acme"
AGENT = Origin.user("agent-1")
CONTACT = "01JCZNTACT0000000000000000"
COMPANY = "01JCZMPANY0000000000000000"
# A Monday 09:00 UTC: inside the default business hours.
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> str:
        return format_iso(self.now)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def store(table: Table, clock: Clock) -> CaseStore:
    for key, kind in (
        (keys.contact(TENANT, CONTACT), keys.CONTACT_ITEM),
        (keys.company(TENANT, COMPANY), "company"),
    ):
        table.transact([table.op.put({**key, "type": kind, "id": key["PK"].rsplit("#", 1)[-1]})])
    return CaseStore(table, clock)


def outbox(table: Table, case_id: str) -> list[str]:
    """The detail types in the case's outbox, in order of writing."""
    page = table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :o)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.case_partition(TENANT, case_id)},
            ":o": {"S": keys.OUTBOX_PREFIX},
        },
    )
    # Events of one change share a millisecond, whose ULIDs do not sort: compare as sets.
    return sorted(i["detail_type"]["S"] for i in page["Items"])


def open_case(store: CaseStore, **fields: Any) -> Any:
    body = {"subject": "Printer on fire", "contact_id": CONTACT, **fields}
    return store.create(TENANT, CaseCreate.model_validate(body), AGENT)


def test_an_urgent_case_opens_with_its_sla_due_in_business_time(
    store: CaseStore, table: Table
) -> None:
    case = open_case(store, priority="urgent")
    assert case.status == "new"
    assert case.sla.first_response is not None
    assert case.sla.first_response.due_at == format_iso(MONDAY + timedelta(hours=1))
    assert case.sla.resolution is not None
    assert case.sla.resolution.due_at == format_iso(MONDAY + timedelta(hours=8))
    assert case.sla.next_response is None
    assert outbox(table, case.id) == ["CaseOpened"]
    assert store.get(TENANT, case.id) == case


def test_a_case_change_is_reads_then_one_transaction(store: CaseStore, table: Table) -> None:
    case = open_case(store)
    with count_calls(table.client) as log:
        store.update(TENANT, case.id, {"status": "open", "priority": "high"}, None, AGENT)
    writes = [c for c in log.calls if c not in ("GetItem", "Query", "BatchGetItem")]
    assert writes == ["TransactWriteItems"]
    assert outbox(table, case.id) == sorted(["CaseOpened", "CaseStatusChanged", "CaseUpdated"])


def test_the_moves_a_help_desk_refuses(store: CaseStore) -> None:
    case = open_case(store)
    with pytest.raises(Unprocessable, match="cannot move from new to closed"):
        store.update(TENANT, case.id, {"status": "closed"}, None, AGENT)
    store.update(TENANT, case.id, {"status": "solved"}, None, AGENT)
    store.update(TENANT, case.id, {"status": "closed"}, None, AGENT)
    with pytest.raises(Unprocessable, match="closed"):
        store.update(TENANT, case.id, {"subject": "Still on fire"}, None, AGENT)
    with pytest.raises(Unprocessable, match="closed"):
        store.reply(TENANT, case.id, ReplyCreate(body="Hello?", public=True), AGENT)


def test_a_public_reply_meets_first_response_and_a_note_does_not(
    store: CaseStore, table: Table, clock: Clock
) -> None:
    case = open_case(store, priority="urgent")
    clock.advance(minutes=10)
    _, note = store.reply(TENANT, case.id, ReplyCreate(body="Checking logs", public=False), AGENT)
    assert note.kind == "note"
    assert store.get(TENANT, case.id).sla.first_response.met_at is None  # type: ignore[union-attr]
    clock.advance(minutes=10)
    replied, entry = store.reply(
        TENANT, case.id, ReplyCreate(body="Unplug it", public=True, status="pending"), AGENT
    )
    assert entry.kind == "reply"
    assert replied.status == "pending"
    assert replied.first_responded_at == format_iso(MONDAY + timedelta(minutes=20))
    assert replied.sla.first_response.met_at == replied.first_responded_at  # type: ignore[union-attr]
    assert replied.sla.resolution.paused  # type: ignore[union-attr]
    page = store.conversation(TENANT, case.id, 10, None)
    assert [i["kind"] for i in page.items] == ["note", "reply"]
    assert outbox(table, case.id) == sorted(
        ["CaseOpened", "CaseReplied", "CaseReplied", "CaseStatusChanged"]
    )


def test_a_public_reply_needs_a_contact(store: CaseStore) -> None:
    case = open_case(store, contact_id=None)
    with pytest.raises(Unprocessable, match="no contact"):
        store.reply(TENANT, case.id, ReplyCreate(body="Hi", public=True), AGENT)


def test_round_robin_gives_each_member_a_case_in_turn(store: CaseStore) -> None:
    queue = store.queues.create(
        TENANT,
        QueueCreate(name="Support", members=["ann", "bob", "cyd"], assignment="round_robin"),
        AGENT,
    )
    assignees = [open_case(store, queue_id=queue["id"]).assignee_id for _ in range(7)]
    assert assignees == ["ann", "bob", "cyd", "ann", "bob", "cyd", "ann"]
    counts = store.queues.load(TENANT, queue["id"])
    assert (counts["open_total"], counts["open#ann"], counts["open#bob"]) == (7, 3, 2)


def test_least_open_fills_the_emptiest_member_first(store: CaseStore) -> None:
    queue = store.queues.create(
        TENANT, QueueCreate(name="Billing", members=["ann", "bob"], assignment="least_open"), AGENT
    )
    first = open_case(store, queue_id=queue["id"])
    second = open_case(store, queue_id=queue["id"])
    assert {first.assignee_id, second.assignee_id} == {"ann", "bob"}
    store.update(TENANT, first.id, {"status": "solved"}, None, AGENT)
    third = open_case(store, queue_id=queue["id"])
    assert third.assignee_id == first.assignee_id  # the one with no unsolved case left


def test_a_queue_holding_unsolved_cases_is_not_deleted(store: CaseStore) -> None:
    queue = store.queues.create(TENANT, QueueCreate(name="Ops"), AGENT)
    case = open_case(store, queue_id=queue["id"])
    with pytest.raises(Conflict, match="1 unsolved"):
        store.queues.delete(TENANT, queue["id"], None)
    store.update(TENANT, case.id, {"status": "solved"}, None, AGENT)
    store.queues.delete(TENANT, queue["id"], None)
    # The solved case of a deleted queue still changes (no counter brings the queue back).
    store.update(TENANT, case.id, {"status": "open"}, None, AGENT)
    assert store.queues.find(TENANT, queue["id"]) is None


def test_a_mailbox_belongs_to_one_queue(store: CaseStore) -> None:
    store.queues.create(TENANT, QueueCreate(name="Support", mailbox="support"), AGENT)
    with pytest.raises(Conflict, match="mailbox"):
        store.queues.create(TENANT, QueueCreate(name="Other", mailbox="support"), AGENT)


def test_each_filter_is_one_query_of_its_own_list(store: CaseStore, table: Table) -> None:
    queue = store.queues.create(TENANT, QueueCreate(name="Support"), AGENT)
    urgent = open_case(store, priority="urgent", queue_id=queue["id"], assignee_id="ann")
    low = open_case(store, priority="low", contact_id=None, company_id=COMPANY)
    store.update(TENANT, low.id, {"status": "pending"}, None, AGENT)
    expected = {
        ("status", "new"): [urgent.id],
        ("status", "pending"): [low.id],
        ("queue_id", queue["id"]): [urgent.id],
        ("assignee_id", "ann"): [urgent.id],
        ("contact_id", CONTACT): [urgent.id],
        ("priority", "low"): [low.id],
        ("company_id", COMPANY): [low.id],
        (None, None): [low.id, urgent.id],
    }
    for (by, value), ids in expected.items():
        with count_calls(table.client) as log:
            page = store.page(TENANT, by, value, 10, None)
        assert [i["id"] for i in page.items] == ids, (by, value)
        assert log.calls == ["Query"]


def test_a_breach_is_announced_once_and_lists_the_case(
    store: CaseStore, table: Table, clock: Clock
) -> None:
    case = open_case(store, priority="urgent")
    due = MONDAY + timedelta(hours=1)
    assert store.announce_due(TENANT, case.id, MONDAY + timedelta(minutes=30)) == []
    warned = store.announce_due(TENANT, case.id, MONDAY + timedelta(minutes=45))
    assert [e.DETAIL_TYPE for e in warned] == ["CaseSlaWarning"]
    assert [i["id"] for i in store.page(TENANT, "sla", "at_risk", 10, None).items] == [case.id]
    clock.now = due
    breached = store.announce_due(TENANT, case.id, due)
    assert [e.DETAIL_TYPE for e in breached] == ["CaseSlaBreached"]
    assert store.announce_due(TENANT, case.id, due) == []  # the timer fired twice
    assert [i["id"] for i in store.page(TENANT, "sla", "breached", 10, None).items] == [case.id]
    assert store.page(TENANT, "sla", "at_risk", 10, None).items == []
    assert outbox(table, case.id) == sorted(["CaseOpened", "CaseSlaWarning", "CaseSlaBreached"])
    shown = store.get(TENANT, case.id)
    assert shown.sla_state == "breached"
    assert shown.sla.first_response.breached  # type: ignore[union-attr]


def test_an_answered_case_has_nothing_to_announce(store: CaseStore, clock: Clock) -> None:
    case = open_case(store, priority="urgent")
    clock.advance(minutes=5)
    store.reply(TENANT, case.id, ReplyCreate(body="On it", public=True, status="pending"), AGENT)
    assert store.announce_due(TENANT, case.id, MONDAY + timedelta(days=30)) == []
    assert "sla_next_at" not in store.load(TENANT, case.id)


def test_a_new_policy_applies_from_the_next_change(store: CaseStore, clock: Clock) -> None:
    policy = json.loads(json.dumps(DEFAULT_POLICY))
    policy["business_hours"]["week"] = {
        day: [["00:00", "24:00"]] for day in policy["business_hours"]["week"]
    }
    policy["targets"]["normal"]["first_response_minutes"] = 30
    case = open_case(store)
    before = case.sla.first_response.due_at  # type: ignore[union-attr]
    store.policies.replace(TENANT, SlaPolicyBody.model_validate(policy), None, AGENT)
    assert store.get(TENANT, case.id).sla.first_response.due_at == before  # type: ignore[union-attr]
    clock.advance(minutes=1)
    changed = store.update(TENANT, case.id, {"tags": ["vip"]}, None, AGENT)
    assert changed.sla.first_response.due_at == format_iso(MONDAY + timedelta(minutes=30))  # type: ignore[union-attr]


def test_round_robin_stays_fair_when_cases_are_created_at_once(store: CaseStore) -> None:
    """Thirty cases created side by side: the queue's turn is taken under a condition, so
    a losing writer reads the queue again and each member gets ten."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    queue = store.queues.create(
        TENANT,
        QueueCreate(name="Rush", members=["ann", "bob", "cyd"], assignment="round_robin"),
        AGENT,
    )
    with ThreadPoolExecutor(max_workers=10) as pool:
        cases = list(pool.map(lambda _: open_case(store, queue_id=queue["id"]), range(30)))
    assert Counter(c.assignee_id for c in cases) == {"ann": 10, "bob": 10, "cyd": 10}
    assert store.queues.load(TENANT, queue["id"])["assign_seq"] == 30
