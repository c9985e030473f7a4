"""case_timers: each case's one-time SLA schedule sits at its next warning or breach, moves
with the case, goes when nothing is coming; its firing announces each alarm once. Cases
change through the API; their events are handed to the function as EventBridge delivers
them, and a schedule's firing as Scheduler delivers its Input (the clock injected)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from crm_core import keys
from crm_core.clock import format_iso
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create
from tests.support.events import outbox_events, redelivered

AGENT = User("acme", ("support",))
ADMIN = User("acme", ("admin",))
GROUP = "crm-test-case-timers"
ROUND_THE_CLOCK = {
    "business_hours": {
        "timezone": "UTC",
        "week": {
            d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    },
    "targets": {"urgent": {"first_response_minutes": 60, "resolution_minutes": 240}},
    "warn_at_percent": 50,
}


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("case_timers")


@pytest.fixture
def scheduler(function: ConsumerFunction) -> Any:
    client = boto3.client("scheduler")
    if GROUP not in {g["Name"] for g in client.list_schedule_groups()["ScheduleGroups"]}:
        client.create_schedule_group(Name=GROUP)
    return client


@pytest.fixture
def policy(cases_api: Api) -> None:
    reply = cases_api.call("PUT", "/settings/sla", ADMIN, ROUND_THE_CLOCK)
    assert reply.status == 200, reply.text


def events(table: Table, case_id: str, detail_type: str) -> list[dict[str, Any]]:
    return outbox_events(table, keys.case_partition("acme", case_id), detail_type)


def deliver(function: ConsumerFunction, event: dict[str, Any]) -> Any:
    return function.handler(event, LambdaContext())


def schedule_of(scheduler: Any, case_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = scheduler.get_schedule(Name=f"case-{case_id}", GroupName=GROUP)
    except scheduler.exceptions.ResourceNotFoundException:
        return None
    return found


def at(moment: str, **delta: float) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")) + timedelta(**delta)


@pytest.mark.usefixtures("policy")
def test_a_breach_fires_once_at_its_time(
    cases_api: Api,
    table: Table,
    function: ConsumerFunction,
    scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = create(cases_api, "/cases", AGENT, {"subject": "Down", "priority": "urgent"})
    (opened,) = events(table, case["id"], "CaseOpened")
    warn_at = format_iso(at(case["created_at"], minutes=30))
    due_at = case["sla"]["first_response"]["due_at"]
    assert due_at == format_iso(at(case["created_at"], minutes=60))
    assert deliver(function, opened) == {"next_at": warn_at}
    schedule = schedule_of(scheduler, case["id"])
    assert schedule is not None
    payload = json.loads(schedule["Target"]["Input"])
    assert payload == {
        "kind": "case_sla_due",
        "tenant_id": "acme",
        "case_id": case["id"],
        "due_at": warn_at,
    }
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["ScheduleExpression"] == f"at({warn_at[:19]})"  # the second it falls in
    keeper = function.context.keeper
    # Fired a moment early (a clock behind): nothing is announced, the schedule stays.
    monkeypatch.setattr(keeper, "now", lambda: at(warn_at, seconds=-5))
    assert deliver(function, payload) == {"announced": []}
    # Within the second before it (at() has whole seconds): the firing waits for it.
    clock = [at(warn_at, seconds=-0.4)]
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    monkeypatch.setattr(keeper, "now", lambda: clock[0])
    monkeypatch.setattr(keeper, "sleep", sleep)
    assert deliver(function, payload) == {"announced": ["CaseSlaWarning"]}
    assert waited == [pytest.approx(0.4)]
    # Again (Scheduler delivers at least once): nothing more.
    monkeypatch.setattr(keeper, "now", lambda: at(warn_at, seconds=1))
    assert deliver(function, payload) == {"announced": []}
    breach = json.loads(schedule_of(scheduler, case["id"])["Target"]["Input"])  # type: ignore[index]
    assert breach["due_at"] == due_at
    monkeypatch.setattr(keeper, "now", lambda: at(due_at, seconds=1))
    assert deliver(function, breach) == {"announced": ["CaseSlaBreached"]}
    assert deliver(function, breach) == {"announced": []}
    (breached,) = events(table, case["id"], "CaseSlaBreached")
    assert breached["detail"]["data"]["target"] == "first_response"
    assert breached["detail"]["data"]["due_at"] == due_at
    assert len(events(table, case["id"], "CaseSlaWarning")) == 1
    listed = cases_api.call("GET", "/cases", AGENT, query={"sla": "breached"}).json
    assert [c["id"] for c in listed["items"]] == [case["id"]]
    # Next: the resolution's warning, two hours in.
    assert keeper.sync("acme", case["id"]) == format_iso(at(case["created_at"], minutes=120))


@pytest.mark.usefixtures("policy")
def test_an_answered_paused_or_solved_case_is_not_breached(
    cases_api: Api,
    table: Table,
    function: ConsumerFunction,
    scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keeper = function.context.keeper
    monkeypatch.setattr(keeper, "now", lambda: datetime.now(UTC) + timedelta(days=2))
    for body in (
        {"body": "On it", "public": False, "status": "pending"},
        {"body": "On it", "public": False, "status": "solved"},
    ):
        case = create(cases_api, "/cases", AGENT, {"subject": "Slow", "priority": "urgent"})
        (opened,) = events(table, case["id"], "CaseOpened")
        assert deliver(function, opened)["next_at"] is not None
        payload = json.loads(schedule_of(scheduler, case["id"])["Target"]["Input"])  # type: ignore[index]
        create(cases_api, f"/cases/{case['id']}/replies", AGENT, body)
        (changed,) = events(table, case["id"], "CaseStatusChanged")
        assert deliver(function, changed) == {"next_at": None}
        assert schedule_of(scheduler, case["id"]) is None
        # A firing already on its way when the case changed announces nothing.
        assert deliver(function, payload) == {"announced": []}
        assert events(table, case["id"], "CaseSlaBreached") == []
        assert deliver(function, redelivered(changed)) == {"next_at": None}
