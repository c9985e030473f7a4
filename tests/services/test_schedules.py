"""Schedules through a running local cloud (tests/fixtures/templates/schedules.yaml), on a
clock the test moves: template rules (rate, cron, disabled), a ScheduleV2, and Scheduler
schedules a function creates at run time (Lambda and SQS targets, NONE and DELETE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local import schedules
from infra.local.dev import LocalCloud
from tests.services.conftest import FakeClock, Inbox, inbox, local_cloud, wait_until

START = datetime(2030, 1, 7, 6, 58, 30, tzinfo=UTC)  # a Monday, just before 07:00
REMINDER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:svc-schedules-reminder"
LANDED_ARN = "arn:aws:sqs:us-east-1:123456789012:svc-schedules-landed"


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[LocalCloud]:
    with local_cloud("schedules.yaml", tmp_path_factory.mktemp("schedules-state")) as running:
        assert running.context is not None
        service = schedules.build(running.context, clock=clock)
        service.start()
        try:
            yield running
        finally:
            service.stop()


@pytest.fixture(scope="module")
def received(cloud: LocalCloud) -> Inbox:
    return inbox(cloud, "svc-schedules-received")


def events_of(messages: list[dict[str, Any]], function: str) -> list[Any]:
    return [m["event"] for m in messages if m["function"] == function]


def ticks(messages: list[dict[str, Any]]) -> list[Any]:
    return [
        e
        for e in events_of(messages, "svc-schedules-ticker")
        if e.get("detail-type") == "Scheduled Event"
    ]


def jobs(messages: list[dict[str, Any]], name: str) -> list[Any]:
    return [e for e in events_of(messages, "svc-schedules-ticker") if e.get("job") == name]


def at(when: datetime) -> str:
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


def create(cloud: LocalCloud, **event: Any) -> None:
    result = cloud.runners.invoke("SchedulerClient", event)
    assert result.ok, result.error


def test_a_rate_rule_fires_the_scheduled_event_eventbridge_sends(
    cloud: LocalCloud, received: Inbox, clock: FakeClock
) -> None:
    assert received.quiet(1.0) == []  # nothing is due before a minute has passed
    now = clock.advance(seconds=61)
    (event,) = ticks(received.wait_for(lambda s: len(ticks(s)) >= 1, what="a rate tick"))
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2030-01-07T06:59:30Z",  # the scheduled time: one minute after the start
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/TickerEveryMinute"],
        "detail": {},
    }
    assert uuid.UUID(event["id"])
    assert now > START + timedelta(minutes=1)
    assert jobs(received.seen, "off") == []  # Enabled: false


def test_a_cron_rule_fires_at_its_minute_with_its_input(
    cloud: LocalCloud, received: Inbox, clock: FakeClock
) -> None:
    assert jobs(received.seen, "morning") == []
    clock.advance(seconds=60)  # 07:00:31
    received.wait_for(lambda s: len(jobs(s, "morning")) == 1, what="the 07:00 job")
    received.quiet(1.0)  # and only once
    assert jobs(received.seen, "morning") == [{"job": "morning"}]


def test_a_schedule_v2_is_a_scheduler_schedule_that_fires(
    cloud: LocalCloud, received: Inbox, clock: FakeClock
) -> None:
    scheduler = cloud.client("scheduler")
    created = scheduler.get_schedule(Name="TickerHourly")
    assert created["ScheduleExpression"] == "rate(1 hour)"
    assert created["Target"]["Arn"].endswith(":function:svc-schedules-ticker")
    clock.advance(hours=1)
    received.wait_for(lambda s: len(jobs(s, "hourly")) == 1, what="the hourly job")
    ticks_before = len(ticks(received.seen))
    received.quiet(1.0)
    assert jobs(received.seen, "hourly") == [{"job": "hourly"}]
    assert len(ticks(received.seen)) <= ticks_before + 1  # an hour of missed ticks: not made up


def test_a_template_scheduler_schedule_fires_at_its_time(
    cloud: LocalCloud, clock: FakeClock
) -> None:
    from_template = inbox(cloud, "svc-schedules-from-template")
    assert clock.now() > datetime(2030, 1, 7, 7, 30, tzinfo=UTC)  # the hourly test moved on
    (message,) = from_template.wait_for(lambda s: len(s) >= 1, what="the template's schedule")
    assert message == {"from": "the template"}
    assert from_template.quiet(1.0) == []


def test_a_one_time_schedule_fires_once(
    cloud: LocalCloud, received: Inbox, clock: FakeClock
) -> None:
    due = clock.now() + timedelta(minutes=2)
    create(
        cloud,
        name="remind-once",
        expression=at(due),
        target_arn=REMINDER_ARN,
        input={"reminder": "call back"},
    )

    def reminders(seen: list[dict[str, Any]]) -> list[Any]:
        return [
            e for e in events_of(seen, "svc-schedules-reminder") if e == {"reminder": "call back"}
        ]

    received.quiet(1.0)  # two ticks: not yet due
    assert reminders(received.seen) == []
    clock.advance(minutes=2)
    received.wait_for(lambda s: len(reminders(s)) == 1, what="the reminder")
    received.quiet(1.5)  # three more looks at the same due schedule
    assert len(reminders(received.seen)) == 1
    kept = cloud.client("scheduler").get_schedule(Name="remind-once")  # NONE: kept
    assert kept["ScheduleExpression"] == at(due)

    # Moved to a new time, it is a new firing.
    later = clock.now() + timedelta(minutes=5)
    create(
        cloud,
        name="remind-once",
        expression=at(later),
        target_arn=REMINDER_ARN,
        input={"reminder": "call back"},
        update=True,
    )
    clock.advance(minutes=5)
    received.wait_for(lambda s: len(reminders(s)) == 2, what="the moved reminder")
    assert len(reminders(received.seen)) == 2


def test_a_schedule_deleted_after_completion_is_gone_once_fired(
    cloud: LocalCloud, received: Inbox, clock: FakeClock
) -> None:
    scheduler = cloud.client("scheduler")
    create(
        cloud,
        name="remind-and-forget",
        expression=at(clock.now() + timedelta(minutes=1)),
        target_arn=REMINDER_ARN,
        input={"reminder": "once only"},
        after="DELETE",
    )
    assert scheduler.get_schedule(Name="remind-and-forget")["ActionAfterCompletion"] == "DELETE"
    clock.advance(minutes=1)

    def fired(seen: list[dict[str, Any]]) -> list[Any]:
        return [
            e for e in events_of(seen, "svc-schedules-reminder") if e == {"reminder": "once only"}
        ]

    received.wait_for(lambda s: len(fired(s)) == 1, what="the reminder")

    def gone() -> bool:
        names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
        return "remind-and-forget" not in names

    wait_until(gone, what="the schedule's deletion")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="remind-and-forget")
    received.quiet(1.0)
    assert len(fired(received.seen)) == 1


def test_a_schedule_with_a_queue_target_sends_its_input_there(
    cloud: LocalCloud, clock: FakeClock
) -> None:
    landed = inbox(cloud, "svc-schedules-landed")
    when = clock.now() + timedelta(minutes=1)
    create(
        cloud,
        name="to-the-queue",
        group="svc-schedules-jobs",  # the template's AWS::Scheduler::ScheduleGroup
        expression=at(when),
        target_arn=LANDED_ARN,
        input={"campaign": "c-1", "at": "<aws.scheduler.scheduled-time>"},
        after="DELETE",
    )
    clock.advance(minutes=1)
    (message,) = landed.wait_for(lambda s: len(s) >= 1, what="the queued message")
    assert message == {"campaign": "c-1", "at": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert landed.quiet(1.0) == []
