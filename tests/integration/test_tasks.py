"""GET /tasks: the tenant's tasks or one assignee's, in one status, earliest due first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.activities import activities_client, log, new_contact, path, task
from tests.support.api import Api, User
from tests.support.aws_calls import count_calls
from tests.support.calls import get, ids, patch, walk
from tests.support.checks import assert_problem

ADMIN = User("acme", ("admin",), sub="admin-1")
SALES = User("acme", ("sales",), sub="sales-1")
SUPPORT = User("acme", ("support",), sub="support-1")
VIEWER = User("acme", ("viewer",), sub="viewer-1")


@pytest.fixture
def contacts(api: Api) -> tuple[str, str]:
    return new_contact(api, ADMIN), new_contact(api, ADMIN, "bob@example.com")


def task_ids(
    api: Api, user: User, query: dict[str, str] | None = None, limit: int = 2
) -> list[str]:
    return [t["id"] for page in walk(api, "/tasks", user, query, limit) for t in page]


def test_no_tasks(activity_api: Api) -> None:
    assert get(activity_api, "/tasks", VIEWER) == {"items": [], "next_cursor": None}
    assert get(activity_api, "/tasks", VIEWER, query={"assignee": "me"}) == {
        "items": [],
        "next_cursor": None,
    }


def test_earliest_due_first_across_contacts(activity_api: Api, contacts: tuple[str, str]) -> None:
    ada, bob = contacts
    dues = [
        (ada, "2030-03-01T09:00:00Z"),
        (bob, "2030-01-01T09:00:00Z"),
        (ada, "2029-12-31T23:59:59.999Z"),
        (bob, "2030-02-01T09:00:00+02:00"),
        (ada, "2030-01-01T09:00:00Z"),  # the same due time as bob's
    ]
    logged = [task(activity_api, cid, SALES, due) for cid, due in dues]

    for limit in (1, 2, 10):
        seen = task_ids(activity_api, VIEWER, limit=limit)
        assert len(seen) == len(set(seen)) == 5
        due_times = [next(t["due_at"] for t in logged if t["id"] == i) for i in seen]
        assert due_times == sorted(due_times)
    first = get(activity_api, "/tasks", VIEWER)["items"]
    assert [t["due_at"] for t in first] == [
        "2029-12-31T23:59:59.999Z",
        "2030-01-01T09:00:00.000Z",
        "2030-01-01T09:00:00.000Z",
        "2030-02-01T07:00:00.000Z",
        "2030-03-01T09:00:00.000Z",
    ]
    # Tasks due at the same time follow their ids.
    assert first[1]["id"] < first[2]["id"]
    assert {t["type"] for t in first} == {"task"}


def test_only_tasks_are_listed(activity_api: Api, contacts: tuple[str, str]) -> None:
    todo = task(activity_api, contacts[0], SALES, "2030-01-01T09:00:00Z")
    log(activity_api, contacts[0], SALES)
    assert task_ids(activity_api, VIEWER) == [todo["id"]]


def test_assignee_me_and_by_id(activity_api: Api, contacts: tuple[str, str]) -> None:
    ada, bob = contacts
    mine = task(activity_api, ada, SALES, "2030-01-02T09:00:00Z")
    for_support = task(activity_api, bob, SALES, "2030-01-01T09:00:00Z", assignee_id=SUPPORT.sub)
    by_support = task(activity_api, ada, SUPPORT, "2030-01-03T09:00:00Z")

    assert task_ids(activity_api, SALES, {"assignee": "me"}) == [mine["id"]]
    assert task_ids(activity_api, SUPPORT, {"assignee": "me"}) == [
        for_support["id"],
        by_support["id"],
    ]
    assert task_ids(activity_api, VIEWER, {"assignee": SUPPORT.sub}, limit=1) == [
        for_support["id"],
        by_support["id"],
    ]
    assert task_ids(activity_api, VIEWER, {"assignee": "me"}) == []
    assert task_ids(activity_api, VIEWER) == [for_support["id"], mine["id"], by_support["id"]]


def test_due_window(activity_api: Api, contacts: tuple[str, str]) -> None:
    at = {
        due: task(activity_api, contacts[0], SALES, due)["id"]
        for due in (
            "2030-01-01T00:00:00.000Z",
            "2030-01-15T12:00:00.000Z",
            "2030-01-31T23:59:59.999Z",
            "2030-02-01T00:00:00.000Z",
        )
    }
    january = {"due_after": "2030-01-01T00:00:00Z", "due_before": "2030-02-01T00:00:00Z"}

    # due_after is included, due_before is not.
    assert task_ids(activity_api, VIEWER, january, limit=1) == [
        at["2030-01-01T00:00:00.000Z"],
        at["2030-01-15T12:00:00.000Z"],
        at["2030-01-31T23:59:59.999Z"],
    ]
    before = {"due_before": "2030-01-15T13:00:00+01:00"}  # 12:00Z: not included
    assert task_ids(activity_api, VIEWER, before) == [at["2030-01-01T00:00:00.000Z"]]
    after = {"due_after": "2030-01-31T23:59:59.999Z"}
    assert task_ids(activity_api, VIEWER, after) == [
        at["2030-01-31T23:59:59.999Z"],
        at["2030-02-01T00:00:00.000Z"],
    ]
    mine = task_ids(activity_api, SALES, {"assignee": "me", **january})
    assert len(mine) == 3


def test_due_before_finds_the_late_ones(activity_api: Api, contacts: tuple[str, str]) -> None:
    late = task(activity_api, contacts[0], SALES, "2020-01-01T09:00:00Z")
    task(activity_api, contacts[0], SALES, "2099-01-01T09:00:00Z")
    now = "2026-01-01T00:00:00Z"
    assert task_ids(activity_api, SALES, {"assignee": "me", "due_before": now}) == [late["id"]]


def test_status_lists(activity_api: Api, contacts: tuple[str, str]) -> None:
    open_ = task(activity_api, contacts[0], SALES, "2030-01-01T09:00:00Z")
    done = task(activity_api, contacts[0], SALES, "2030-01-02T09:00:00Z")
    dropped = task(activity_api, contacts[1], SALES, "2030-01-03T09:00:00Z")
    logged_done = task(activity_api, contacts[1], SALES, "2020-01-01T09:00:00Z", status="completed")
    patch(activity_api, path(done), SALES, {"status": "completed"})
    patch(activity_api, path(dropped), SALES, {"status": "cancelled"})

    for query in ({}, {"assignee": "me"}):
        assert task_ids(activity_api, SALES, query) == [open_["id"]]
        assert task_ids(activity_api, SALES, {**query, "status": "open"}) == [open_["id"]]
        completed = task_ids(activity_api, SALES, {**query, "status": "completed"})
        assert completed == [logged_done["id"], done["id"]]
        cancelled = task_ids(activity_api, SALES, {**query, "status": "cancelled"})
        assert cancelled == [dropped["id"]]
    items = get(activity_api, "/tasks", SALES, query={"status": "completed"})["items"]
    assert all(t["completed_at"] for t in items)


def test_reassigning_and_rescheduling_move_the_task(
    activity_api: Api, contacts: tuple[str, str]
) -> None:
    first = task(activity_api, contacts[0], SALES, "2030-01-01T09:00:00Z")
    second = task(activity_api, contacts[0], SALES, "2030-01-02T09:00:00Z")

    patch(activity_api, path(first), SALES, {"due_at": "2030-01-03T09:00:00Z"})
    assert task_ids(activity_api, SALES, {"assignee": "me"}) == [second["id"], first["id"]]

    moved = patch(activity_api, path(first), SALES, {"assignee_id": SUPPORT.sub})
    assert moved["assignee_id"] == SUPPORT.sub
    assert task_ids(activity_api, SALES, {"assignee": "me"}) == [second["id"]]
    assert task_ids(activity_api, SUPPORT, {"assignee": "me"}) == [first["id"]]
    assert task_ids(activity_api, VIEWER) == [second["id"], first["id"]]


def test_a_deleted_task_leaves_every_list(activity_api: Api, contacts: tuple[str, str]) -> None:
    todo = task(activity_api, contacts[0], SALES, "2030-01-01T09:00:00Z")
    assert activity_api.call("DELETE", path(todo), SALES).status == 204
    assert task_ids(activity_api, SALES) == []
    assert task_ids(activity_api, SALES, {"assignee": "me"}) == []


def test_another_tenants_tasks_are_never_listed(
    api: Api, activity_api: Api, contacts: tuple[str, str]
) -> None:
    globex = User("globex", ("admin",), sub=SALES.sub)  # the same user id, another tenant
    theirs = new_contact(api, globex, "ada@globex.example")
    task(activity_api, theirs, globex, "2030-01-01T09:00:00Z")
    mine = task(activity_api, contacts[0], SALES, "2030-01-02T09:00:00Z")

    assert task_ids(activity_api, SALES) == [mine["id"]]
    assert task_ids(activity_api, SALES, {"assignee": "me"}) == [mine["id"]]
    cursor_page = get(activity_api, "/tasks", globex, query={"limit": "1"})
    assert cursor_page["next_cursor"] is None


def test_a_cursor_is_bound_to_its_list(activity_api: Api, contacts: tuple[str, str]) -> None:
    for due in ("2030-01-01T09:00:00Z", "2030-01-02T09:00:00Z"):
        task(activity_api, contacts[0], SALES, due)
        task(activity_api, contacts[0], SUPPORT, due)
    mine = get(activity_api, "/tasks", SALES, query={"assignee": "me", "limit": "1"})

    theirs = activity_api.call(
        "GET", "/tasks", SUPPORT, query={"assignee": "me", "cursor": mine["next_cursor"]}
    )
    everyone = activity_api.call("GET", "/tasks", SALES, query={"cursor": mine["next_cursor"]})

    assert_problem(theirs, 400)
    assert_problem(everyone, 400)


def test_a_task_list_page_is_one_query(
    activity_api: Api, table: Any, contacts: tuple[str, str]
) -> None:
    for due in ("2030-01-01T09:00:00Z", "2030-01-02T09:00:00Z", "2030-01-03T09:00:00Z"):
        task(activity_api, contacts[0], SALES, due)
    window = {"due_after": "2030-01-01T00:00:00Z", "due_before": "2031-01-01T00:00:00Z"}
    for query in ({}, {"assignee": "me"}, {"status": "completed"}, window):
        with count_calls(table.client, activities_client()) as calls:
            get(activity_api, "/tasks", SALES, query={**query, "limit": "2"})
        assert calls.calls == ["Query"], query


def test_the_page_shows_each_task_in_full(activity_api: Api, contacts: tuple[str, str]) -> None:
    todo = task(activity_api, contacts[0], SALES, "2030-01-01T09:00:00Z", priority="high")
    (listed,) = get(activity_api, "/tasks", VIEWER)["items"]
    assert listed == todo
    assert ids([listed]) == [todo["id"]]
