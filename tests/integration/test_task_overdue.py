"""task_overdue: one TaskOverdue event for each open task whose due time has passed, once,
however often, however concurrently and wherever interrupted the daily check runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, TaskStatus, validate_fields
from crm_core.activities.store import ActivityStore, Editor
from crm_core.clock import format_iso
from crm_core.dynamo import Item
from crm_core.events.activities import TaskOverdue
from crm_core.events.envelope import ActorType, Origin
from crm_core.events.outbox import OUTBOX_EVENT
from crm_core.invocation import OutOfTime
from crm_core.pagination import ListQuery
from crm_core.table import Table
from infra.cfn import REPO_ROOT, load_template
from infra.local.schedules import scheduled_event
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.activities import Stores
from tests.support.api import LambdaContext
from tests.support.aws_calls import count_calls
from tests.support.lambda_pool import LambdaPool, lambda_pool

TENANT = "acme"
USER = Origin.user("user-1", "req-1")
ADMIN = Editor("user-1", is_admin=True)
SAMPLE = REPO_ROOT / "events" / "schedule" / "task-overdue.json"


class Context(LambdaContext):
    """A Lambda context whose remaining time is given, call after call (the last repeats)."""

    def __init__(self, *remaining_ms: int) -> None:
        super().__init__()
        self.remaining = list(remaining_ms or (280_000,))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("task_overdue")


@pytest.fixture
def crm(table: Table) -> Crm:
    return Crm(table)


class Crm(Stores):
    def task(
        self, contact_id: str, due: datetime, status: str = "open", tenant: str = TENANT
    ) -> Item:
        fields = {"subject": "Follow up", "due_at": format_iso(due), "status": status}
        return self.activities.log(
            tenant,
            contact_id,
            ActivityType.TASK,
            validate_fields(ActivityType.TASK, fields),
            None,
            USER,
        )

    def reload(self, task: Item) -> Item:
        item = self.table.get({"PK": task["PK"], "SK": task["SK"]})
        assert item is not None
        return item

    def reschedule(self, task: Item, due: datetime) -> Item:
        return self.activities.update(
            task["tenant_id"],
            task["contact_id"],
            task["id"],
            {"due_at": format_iso(due)},
            None,
            ADMIN,
            USER,
        )

    def reports(self, tenant: str, contact_id: str) -> list[Item]:
        """The TaskOverdue outbox items of a contact's partition, oldest first."""
        listing = ListQuery("outbox", keys.contact(tenant, contact_id)["PK"])
        page = self.table.query(
            listing, 500, None, newest_first=False, sort_prefix=keys.OUTBOX_PREFIX
        )
        return [i for i in page.items if i["detail_type"] == "TaskOverdue"]

    def reported_ids(self, tenant: str, *contacts: str) -> list[str]:
        return sorted(
            TaskOverdue.model_validate_json(i["detail"]).data.task.id
            for contact in contacts
            for i in self.reports(tenant, contact)
        )


def now() -> datetime:
    return datetime.now(UTC)


def ids(tasks: list[Item]) -> list[str]:
    return sorted(t["id"] for t in tasks)


# What is reported ------------------------------------------------------------------------
def test_each_open_task_due_before_now_is_reported_once(crm: Crm) -> None:
    a, b = crm.contact(), crm.contact()
    start = now()
    late = [
        crm.task(a, start - timedelta(days=3)),
        crm.task(a, start - timedelta(minutes=1)),
        crm.task(b, start - timedelta(days=40)),
    ]
    quiet = [
        crm.task(a, start - timedelta(days=2), status="completed"),
        crm.task(b, start - timedelta(days=2), status="cancelled"),
        crm.task(a, start + timedelta(hours=1)),
        crm.task(b, start + timedelta(days=30)),
    ]
    when = format_iso(now())

    assert crm.activities.report_overdue(when) == 3

    for task in late:
        item = crm.reload(task)
        assert item["overdue_at"] == when
        assert "GSI4PK" not in item  # out of the watch: never reported again
        assert item["status"] == "open"
        (report,) = [
            r for r in crm.reports(TENANT, task["contact_id"]) if task["id"] in r["detail"]
        ]
        assert report["type"] == OUTBOX_EVENT
        assert report["source"] == "crm.activities"
        assert report["PK"] == keys.contact(TENANT, task["contact_id"])["PK"]
        assert report["tenant_id"] == TENANT
        event = TaskOverdue.model_validate_json(report["detail"])
        assert event.tenant_id == TENANT
        assert event.metadata.actor.type == ActorType.SYSTEM
        assert event.metadata.actor.id == "task_overdue"
        assert event.metadata.occurred_at == when
        facts = event.data.task
        assert (facts.id, facts.contact_id, facts.due_at) == (
            task["id"],
            task["contact_id"],
            task["due_at"],
        )
        assert (facts.type, facts.status, facts.assignee_id) == ("task", "open", "user-1")
    for task in quiet:
        assert "overdue_at" not in crm.reload(task)
    assert crm.reported_ids(TENANT, a, b) == ids(late)

    assert crm.activities.report_overdue(format_iso(now())) == 0
    assert crm.reported_ids(TENANT, a, b) == ids(late)
    # Still open, and listed as such, with the time they were reported.
    listed = crm.activities.tasks(TENANT, None, TaskStatus.OPEN, 50, None).items
    assert ids(listed) == ids(late + quiet[2:])
    assert {t["id"]: t.get("overdue_at") for t in listed if t["id"] in ids(late)} == dict.fromkeys(
        ids(late), when
    )


def test_a_rescheduled_task_is_watched_again(crm: Crm) -> None:
    contact = crm.contact()
    task = crm.task(contact, now() - timedelta(days=1))
    assert crm.activities.report_overdue(format_iso(now())) == 1

    rescheduled = crm.reschedule(task, now() + timedelta(days=1))

    assert "overdue_at" not in crm.reload(task)
    assert crm.activities.report_overdue(format_iso(now())) == 0
    assert crm.activities.report_overdue(format_iso(now() + timedelta(days=2))) == 1
    reports = [TaskOverdue.model_validate_json(r["detail"]) for r in crm.reports(TENANT, contact)]
    assert [r.data.task.due_at for r in reports] == [task["due_at"], rescheduled["due_at"]]


def test_tasks_of_two_tenants_are_each_reported_in_their_own_tenant(crm: Crm) -> None:
    ours, theirs = crm.contact("acme"), crm.contact("globex")
    our_task = crm.task(ours, now() - timedelta(hours=2), tenant="acme")
    their_task = crm.task(theirs, now() - timedelta(hours=3), tenant="globex")

    assert crm.activities.report_overdue(format_iso(now())) == 2

    (our_report,) = crm.reports("acme", ours)
    (their_report,) = crm.reports("globex", theirs)
    assert TaskOverdue.model_validate_json(our_report["detail"]).data.task.id == our_task["id"]
    assert our_report["tenant_id"] == "acme"
    assert our_report["PK"].startswith("T#acme#")
    assert TaskOverdue.model_validate_json(their_report["detail"]).data.task.id == their_task["id"]
    assert their_report["tenant_id"] == "globex"
    assert their_report["PK"].startswith("T#globex#")


def test_a_run_costs_a_query_per_shard_page_and_a_transaction_per_report(crm: Crm) -> None:
    """Tasks due later are outside every Query's key condition: they cost nothing."""
    contact = crm.contact()
    for hours in range(3):
        crm.task(contact, now() - timedelta(hours=hours + 1))
    with count_calls(crm.table.client) as few:
        assert crm.activities.report_overdue(format_iso(now())) == 3
    for hours in range(3):
        crm.task(contact, now() - timedelta(hours=hours + 1))
    for days in range(60):
        crm.task(contact, now() + timedelta(days=days + 1))
    with count_calls(crm.table.client) as many:
        assert crm.activities.report_overdue(format_iso(now())) == 3

    expected = {"Query": keys.TASK_DUE_SHARDS, "TransactWriteItems": 3}
    assert few.by_operation == many.by_operation == expected


# The function ---------------------------------------------------------------------------
def test_the_scheduled_event_of_the_template_runs_the_check(
    crm: Crm, function: ConsumerFunction
) -> None:
    contact = crm.contact()
    late = [crm.task(contact, now() - timedelta(hours=h + 1)) for h in range(3)]
    crm.task(contact, now() + timedelta(hours=1))
    event = json.loads(SAMPLE.read_text())

    assert function.handler(event, Context()) == {"reported": 3}
    assert function.handler(event, Context()) == {"reported": 0}
    assert crm.reported_ids(TENANT, contact) == ids(late)


def test_the_sample_is_the_event_the_daily_rule_sends() -> None:
    """events/schedule/task-overdue.json is what the local cloud fires (infra/local/schedules.py)
    and EventBridge sends for the template's schedule: same fields, the rule's ARN."""
    sample = json.loads(SAMPLE.read_text())
    props = load_template()["Resources"]["TaskOverdueFunction"]["Properties"]
    (schedule,) = props["Events"].values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == "cron(0 6 * * ? *)"
    name = schedule["Properties"]["Name"]["Fn::Sub"].replace("${Stage}", "local")
    fired = scheduled_event(sample["resources"][0], datetime(2026, 11, 23, 6, tzinfo=UTC))
    assert sample["resources"] == [f"arn:aws:events:us-east-1:123456789012:rule/{name}"]
    assert {k: v for k, v in sample.items() if k != "id"} == {
        k: v for k, v in fired.items() if k != "id"
    }


def test_a_run_out_of_time_fails_and_its_retry_reports_the_rest(
    crm: Crm, function: ConsumerFunction
) -> None:
    contact = crm.contact()
    late = [crm.task(contact, now() - timedelta(hours=h + 1)) for h in range(5)]
    event = json.loads(SAMPLE.read_text())

    with pytest.raises(OutOfTime, match="reported 2 overdue tasks"):
        function.handler(event, Context(60_000, 60_000, 14_000))
    assert len(crm.reported_ids(TENANT, contact)) == 2

    # Lambda retries the failed asynchronous invocation: it goes on where the first stopped.
    assert function.handler(event, Context()) == {"reported": 3}
    assert crm.reported_ids(TENANT, contact) == ids(late)


def test_nothing_overdue_is_a_success_even_with_little_time(
    crm: Crm, function: ConsumerFunction
) -> None:
    crm.task(crm.contact(), now() + timedelta(days=1))
    assert function.handler(json.loads(SAMPLE.read_text()), Context(1_000)) == {"reported": 0}


# Races ----------------------------------------------------------------------------------
class Interrupted:
    """A DynamoDB client that lets `meanwhile` run just before its first transaction: the
    reads before it have been made, the write is not yet."""

    def __init__(self, client: Any, meanwhile: Any) -> None:
        self._client = client
        self._meanwhile = meanwhile

    def transact_write_items(self, **params: Any) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return self._client.transact_write_items(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_task_reported_while_being_rescheduled_is_watched_again(crm: Crm) -> None:
    contact = crm.contact()
    task = crm.task(contact, now() - timedelta(hours=1))
    reported_meanwhile: list[int] = []
    racing = ActivityStore(
        Table(
            Interrupted(
                crm.table.client,
                lambda: reported_meanwhile.append(crm.activities.report_overdue(format_iso(now()))),
            ),
            crm.table.name,
        )
    )

    racing.update(
        TENANT,
        contact,
        task["id"],
        {"due_at": format_iso(now() + timedelta(days=1))},
        None,
        ADMIN,
        USER,
    )

    assert reported_meanwhile == [1]
    item = crm.reload(task)
    assert "overdue_at" not in item
    assert crm.activities.report_overdue(format_iso(now() + timedelta(days=2))) == 1
    assert len(crm.reports(TENANT, contact)) == 2


def test_a_task_reported_while_a_merge_moves_it_is_reported_once(crm: Crm) -> None:
    survivor, merged = crm.contact(), crm.contact()
    task = crm.task(merged, now() - timedelta(hours=1))
    crm.contacts.merge(TENANT, survivor, merged, None, USER)
    reported_meanwhile: list[int] = []
    racing = ActivityStore(
        Table(
            Interrupted(
                crm.table.client,
                lambda: reported_meanwhile.append(crm.activities.report_overdue(format_iso(now()))),
            ),
            crm.table.name,
        )
    )

    assert racing.move_all(TENANT, merged, survivor) == 1

    assert reported_meanwhile == [1]
    moved = crm.table.get(keys.activity(TENANT, survivor, task["id"]))
    assert moved is not None
    assert moved["overdue_at"]
    assert crm.activities.report_overdue(format_iso(now())) == 0
    assert crm.reported_ids(TENANT, survivor, merged) == [task["id"]]


# Concurrency: one process per Lambda environment (docs/decisions.md, 17) ------------------
@pytest.fixture(scope="module")
def pool(function: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("task_overdue") as running:
        yield running


def _run(event: dict[str, Any], barrier: Any) -> int:
    """In a worker: one invocation of the warm handler, released with the others."""
    from tests.support import lambda_pool as environment

    barrier.wait(60)
    result: dict[str, int] = environment._handler(event, Context())
    return result["reported"]


def test_runs_at_the_same_time_report_each_task_once(crm: Crm, pool: LambdaPool) -> None:
    """A retry, or a second firing, overlapping the first: every task is reported once."""
    contacts = [crm.contact() for _ in range(3)]
    late = [crm.task(c, now() - timedelta(minutes=n + 1)) for n in range(8) for c in contacts]
    event = json.loads(SAMPLE.read_text())
    barrier = pool.manager.Barrier(4)

    futures = [pool.executor.submit(_run, event, barrier) for _ in range(4)]
    reported = [f.result(timeout=120) for f in futures]

    assert sum(reported) == len(late), reported
    assert crm.reported_ids(TENANT, *contacts) == ids(late)
