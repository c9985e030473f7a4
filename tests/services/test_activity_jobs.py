"""The asynchronous activity functions of template.yaml, wired as the template wires them, on
its local cloud: a merge's and a delete's events travel from the outbox through the stream
and the bus to activity_events; the daily schedule runs task_overdue, whose TaskOverdue
events reach the bus the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.activities.store import ActivityStore
from crm_core.clock import format_iso
from crm_core.contacts.store import ContactStore
from crm_core.dynamo import Item
from crm_core.events.envelope import Origin
from crm_core.pagination import ListQuery
from crm_core.records.contact import ContactCreate
from crm_core.table import Table
from infra.aws import boto_client
from infra.local import eventbridge, schedules, streams
from infra.local.dev import LocalCloud
from tests.delivery.support import Log, wait_until
from tests.services.conftest import FakeClock, template_cloud, watch_bus

TENANT = "acme"
USER = Origin.user("user-1", "req-1")
BUS = "crm-local-bus"
START = datetime(2030, 1, 7, 5, 59, 40, tzinfo=UTC)  # just before the daily check


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[tuple[LocalCloud, Log]]:
    log = Log()
    services: list[Any] = [
        eventbridge.build,
        streams.build,
        lambda ctx: schedules.build(ctx, clock=clock),
    ]
    with template_cloud(tmp_path_factory.mktemp("activity-jobs"), services, log) as local:
        yield local, log


class Crm:
    def __init__(self, local: LocalCloud) -> None:
        self.table = Table(boto_client("dynamodb", local.endpoint.url), "crm-local")
        self.contacts = ContactStore(self.table)
        self.activities = ActivityStore(self.table)

    def contact(self) -> str:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        return self.contacts.create(TENANT, ContactCreate(email=email), USER).id

    def notes(self, contact_id: str, count: int) -> list[Item]:
        fields = validate_fields(ActivityType.NOTE, {"body": "Met at the fair."})
        return [
            self.activities.log(TENANT, contact_id, ActivityType.NOTE, fields, None, USER)
            for _ in range(count)
        ]

    def task(self, contact_id: str, due: datetime) -> Item:
        fields = validate_fields(
            ActivityType.TASK, {"subject": "Call back", "due_at": format_iso(due)}
        )
        return self.activities.log(TENANT, contact_id, ActivityType.TASK, fields, None, USER)

    def timeline(self, contact_id: str) -> list[str]:
        listing = ListQuery("timeline", keys.contact(TENANT, contact_id)["PK"])
        page = self.table.query(listing, 100, None, sort_prefix=keys.ACTIVITY_PREFIX)
        return sorted(i["id"] for i in page.items)


def test_a_merge_moves_the_activities_to_the_survivor(cloud: tuple[LocalCloud, Log]) -> None:
    local, log = cloud
    crm = Crm(local)
    survivor, merged = crm.contact(), crm.contact()
    everything = sorted(i["id"] for i in crm.notes(survivor, 2) + crm.notes(merged, 5))

    crm.contacts.merge(TENANT, survivor, merged, None, USER)

    wait_until(
        lambda: crm.timeline(survivor) == everything and crm.timeline(merged) == [],
        "activity_events to move the merged contact's activities",
        timeout=30,
        log=log,
    )
    assert crm.contacts.get(TENANT, survivor).activity_counts == {"note": 7}


def test_a_delete_deletes_the_contacts_activities(cloud: tuple[LocalCloud, Log]) -> None:
    local, log = cloud
    crm = Crm(local)
    contact = crm.contact()
    crm.notes(contact, 4)

    crm.contacts.delete(TENANT, contact, None, USER)

    wait_until(
        lambda: crm.timeline(contact) == [],
        "activity_events to delete the deleted contact's activities",
        timeout=30,
        log=log,
    )


def test_the_daily_schedule_reports_overdue_tasks_on_the_bus(
    cloud: tuple[LocalCloud, Log], clock: FakeClock
) -> None:
    local, log = cloud
    crm = Crm(local)
    contact = crm.contact()
    late = crm.task(contact, datetime.now(UTC) - timedelta(hours=1))
    crm.task(contact, datetime.now(UTC) + timedelta(days=1))
    inbox = watch_bus(
        local,
        BUS,
        "activity-jobs-overdue",
        {"source": ["crm.activities"], "detail-type": ["TaskOverdue"]},
    )

    clock.advance(seconds=30)  # 06:00:10: the rule crm-local-task-overdue fires

    (event,) = inbox.wait_for(lambda seen: len(seen) >= 1, timeout=30, what="TaskOverdue")
    assert event["detail"]["data"]["task"]["id"] == late["id"]
    assert event["detail"]["metadata"]["tenant_id"] == TENANT
    assert inbox.quiet(1.0) == []
    item = crm.table.get({"PK": late["PK"], "SK": late["SK"]})
    assert item is not None
    assert item["overdue_at"]
    assert any("crm-local-task-overdue" in line for line in log.lines), log.text()
