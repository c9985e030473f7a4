"""deal_rotting: each deal's one-time rotting schedule sits at the moment the deal rots (its
stage's rotting days after it entered the stage or had its last activity), moves when the
deal moves or gets an activity, goes when it cannot rot; its firing alerts DealRotting once.
Deals change through the API; their events are handed to the function as EventBridge
delivers them, and a schedule's firing as Scheduler delivers its Input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from crm_core import keys
from crm_core.clock import format_iso
from crm_core.deals.pipeline_models import default_pipeline
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create, patch
from tests.support.events import outbox_events, redelivered

ADMIN = User("acme", ("admin",))
GROUP = "crm-test-deal-rotting"


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("deal_rotting")


@pytest.fixture
def scheduler(function: ConsumerFunction) -> Any:
    client = boto3.client("scheduler")
    if GROUP not in {g["Name"] for g in client.list_schedule_groups()["ScheduleGroups"]}:
        client.create_schedule_group(Name=GROUP)
    return client


@pytest.fixture
def rotting_pipeline(deals_api: Api) -> None:
    """The default pipeline, its proposal stage rotting after 3 days."""
    stages = default_pipeline()["stages"]
    for stage in stages:
        if stage["id"] == "proposal":
            stage["rotting_days"] = 3
    patch(deals_api, "/pipelines/default", ADMIN, {"stages": stages})


def events(table: Table, deal_id: str, detail_type: str) -> list[dict[str, Any]]:
    return outbox_events(table, keys.deal_partition("acme", deal_id), detail_type)


def deliver(function: ConsumerFunction, event: dict[str, Any]) -> Any:
    return function.handler(event, LambdaContext())


def schedule_of(scheduler: Any, deal_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = scheduler.get_schedule(Name=f"deal-{deal_id}", GroupName=GROUP)
    except scheduler.exceptions.ResourceNotFoundException:
        return None
    return found


def later(moment: str, **delta: float) -> str:
    return format_iso(datetime.fromisoformat(moment) + timedelta(**delta))


@pytest.mark.usefixtures("rotting_pipeline")
def test_a_deal_in_a_rotting_stage_is_scheduled_and_alerted_once(
    deals_api: Api,
    table: Table,
    function: ConsumerFunction,
    scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"name": "Stale", "amount": "10.00", "currency": "USD", "close_date": "2027-01-31"}
    deal = create(deals_api, "/deals", ADMIN, {**body, "stage_id": "proposal"})
    (created,) = events(table, deal["id"], "DealCreated")
    rots_at = later(deal["stage_entered_at"], days=3)
    assert deliver(function, created) == {"rots_at": rots_at}
    schedule = schedule_of(scheduler, deal["id"])
    assert schedule is not None
    payload = json.loads(schedule["Target"]["Input"])
    assert payload == {
        "kind": "deal_rots",
        "tenant_id": "acme",
        "deal_id": deal["id"],
        "rots_at": rots_at,
    }
    # at() has whole seconds: the moment's, or the next one (never before the moment).
    moment = datetime.fromisoformat(rots_at)
    whole = moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)
    assert schedule["ScheduleExpression"] == f"at({whole.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    # The schedule fires at its moment: one DealRotting, and none for a repeated firing.
    keeper = function.context.keeper
    monkeypatch.setattr(keeper, "clock", lambda: later(rots_at, seconds=1))
    assert deliver(function, payload) == {"alerted": True}
    assert deliver(function, payload) == {"alerted": False}
    (rotting,) = events(table, deal["id"], "DealRotting")
    assert rotting["detail"]["data"]["rotting_days"] == 3
    assert rotting["detail"]["data"]["since"] == deal["stage_entered_at"]
    assert rotting["detail"]["metadata"]["occurred_at"] == rots_at
    # The deal's own fields did not change (no new version, no history entry).
    assert table.get(keys.deal("acme", deal["id"]))["version"] == 1  # type: ignore[index]
    # The event delivered again is handled once (its first answer); a sync after the alert
    # leaves no schedule for a moment already alerted.
    assert deliver(function, redelivered(created)) == {"rots_at": rots_at}
    assert keeper.sync("acme", deal["id"]) is None
    assert schedule_of(scheduler, deal["id"]) is None


@pytest.mark.usefixtures("rotting_pipeline")
def test_the_schedule_moves_with_activities_and_stages_and_goes_when_closed(
    deals_api: Api,
    table: Table,
    function: ConsumerFunction,
    scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"name": "Busy", "amount": "10.00", "currency": "USD", "close_date": "2027-01-31"}
    deal = create(deals_api, "/deals", ADMIN, body)
    # Qualification does not rot: no schedule.
    assert deliver(function, events(table, deal["id"], "DealCreated")[0]) == {"rots_at": None}
    assert schedule_of(scheduler, deal["id"]) is None
    moved = patch(deals_api, f"/deals/{deal['id']}", ADMIN, {"stage_id": "proposal"})
    first = later(moved["stage_entered_at"], days=3)
    assert deliver(function, events(table, deal["id"], "DealStageChanged")[0]) == {"rots_at": first}
    # An activity a day later moves the moment on; an older one does not move it back.
    keeper = function.context.keeper
    touched = later(moved["stage_entered_at"], days=1)
    assert keeper.note_activity("acme", deal["id"], touched)
    assert not keeper.note_activity("acme", deal["id"], moved["stage_entered_at"])
    assert keeper.sync("acme", deal["id"]) == later(touched, days=3)
    payload = json.loads(schedule_of(scheduler, deal["id"])["Target"]["Input"])  # type: ignore[index]
    assert payload["rots_at"] == later(touched, days=3)
    # The first moment's firing, had it been on its way, does nothing now.
    monkeypatch.setattr(keeper, "clock", lambda: later(touched, days=10))
    stale = {**payload, "rots_at": first}
    assert deliver(function, stale) == {"alerted": False}
    # Won: nothing rots; the schedule goes, and a late firing does nothing.
    patch(deals_api, f"/deals/{deal['id']}", ADMIN, {"stage_id": "won"})
    assert deliver(function, events(table, deal["id"], "DealWon")[0]) == {"rots_at": None}
    assert schedule_of(scheduler, deal["id"]) is None
    assert deliver(function, payload) == {"alerted": False}
    assert events(table, deal["id"], "DealRotting") == []


@pytest.mark.usefixtures("rotting_pipeline")
def test_a_deleted_deal_loses_its_schedule(
    deals_api: Api, table: Table, function: ConsumerFunction, scheduler: Any
) -> None:
    body = {"name": "Gone", "amount": "10.00", "currency": "USD", "close_date": "2027-01-31"}
    deal = create(deals_api, "/deals", ADMIN, {**body, "stage_id": "proposal"})
    deliver(function, events(table, deal["id"], "DealCreated")[0])
    assert schedule_of(scheduler, deal["id"]) is not None
    assert deals_api.call("DELETE", f"/deals/{deal['id']}", ADMIN).status == 204
    assert deliver(function, events(table, deal["id"], "DealDeleted")[0]) == {"rots_at": None}
    assert schedule_of(scheduler, deal["id"]) is None
