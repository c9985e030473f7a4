"""The reports consumer: activities logged, changed and deleted through the API move the
`activities` report's aggregates, in the tenant's zone, once whatever is delivered again."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core import keys
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.activities import path
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create
from tests.support.events import outbox_events, redelivered

ADMIN = User("acme", ("admin",), sub="ann")


@pytest.fixture(scope="module")
def function(contacts_module: Any) -> ConsumerFunction:
    return load_consumer("report_aggregator")


def deliver(table: Table, function: ConsumerFunction, contact_id: str) -> list[str]:
    """Every activity event of the contact, in order, and each once more."""
    partition = keys.contact("acme", contact_id)["PK"]
    found = []
    for kind in ("ActivityLogged", "ActivityUpdated", "ActivityDeleted"):
        found += outbox_events(table, partition, kind)
    found.sort(key=lambda e: e["detail"]["metadata"]["occurred_at"])
    outcomes = [function.handler(event, LambdaContext()) for event in found]
    outcomes += [function.handler(redelivered(event), LambdaContext()) for event in found]
    return outcomes


def day_counts(function: ConsumerFunction, day: str) -> dict[tuple[str, str], int]:
    buckets = function.context.aggregates.buckets("acme", "activities", "day", day, day)
    return {(b["dims"]["owner_id"], b["dims"]["type"]): int(b["n"]) for b in buckets if b["n"]}


def test_activities_move_their_report_once_in_the_tenants_zone(
    api: Api, activity_api: Api, table: Table, function: ConsumerFunction
) -> None:
    function.context.zones._known.clear()
    table.client.put_item(
        TableName=table.name,
        Item={
            **{k: {"S": v} for k, v in keys.report_settings("acme").items()},
            "timezone": {"S": "America/New_York"},
        },
    )
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})["id"]
    where = f"/contacts/{contact}/activities"
    # 03:30 UTC on the 6th is 22:30 on the 5th in New York: the 5th's.
    body = {"type": "call", "direction": "outbound", "outcome": "connected"}
    create(activity_api, where, ADMIN, {**body, "occurred_at": "2026-12-06T03:30:00Z"})
    note = {"type": "note", "body": "hi", "occurred_at": "2026-12-06T15:00:00Z"}
    dropped = create(activity_api, where, ADMIN, note)
    task = {"type": "task", "subject": "Call back", "due_at": "2026-12-20T10:00:00Z"}
    moving = create(activity_api, where, ADMIN, {**task, "occurred_at": "2026-12-05T15:00:00Z"})
    moved = activity_api.call("PATCH", path(moving), ADMIN, {"assignee_id": "cyd"})
    assert moved.status == 200, moved.text
    assert activity_api.call("DELETE", path(dropped), ADMIN).status == 204
    outcomes = deliver(table, function, contact)
    assert outcomes[:5] == ["applied"] * 5  # three logged, one reassigned, one deleted
    assert set(outcomes[5:]) == {"stale"}  # the second delivery of each
    assert day_counts(function, "2026-12-05") == {("ann", "call"): 1, ("cyd", "task"): 1}
    assert day_counts(function, "2026-12-06") == {}
    aggregates = function.context.aggregates
    month = list(aggregates.buckets("acme", "activities", "month", "2026-12", "2026-12"))
    counted = {(b["dims"]["owner_id"], b["dims"]["type"], int(b["n"])) for b in month}
    assert counted == {
        ("ann", "call", 1),
        ("ann", "task", 0),
        ("cyd", "task", 1),
        ("ann", "note", 0),
    }
