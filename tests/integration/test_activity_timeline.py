"""A contact's timeline: newest first, paged without gaps or repeats (also among activities
of the same millisecond), filtered by type and time window, in one Query per page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.activities import BODIES, activities_client, log, new_contact
from tests.support.api import Api, User
from tests.support.aws_calls import count_calls
from tests.support.calls import get, ids, walk
from tests.support.checks import assert_problem

ADMIN = User("acme", ("admin",), sub="admin-1")
VIEWER = User("acme", ("viewer",), sub="viewer-1")
SAME = "2025-06-01T12:00:00.000Z"


@pytest.fixture
def contact(api: Api) -> str:
    return new_contact(api, ADMIN)


def timeline(contact_id: str) -> str:
    return f"/contacts/{contact_id}/timeline"


def walk_ids(api: Api, contact_id: str, query: dict[str, str] | None, limit: int) -> list[str]:
    return [a["id"] for page in walk(api, timeline(contact_id), VIEWER, query, limit) for a in page]


def test_an_empty_timeline(activity_api: Api, contact: str) -> None:
    assert get(activity_api, timeline(contact), VIEWER) == {"items": [], "next_cursor": None}


def test_newest_first_whatever_the_order_they_were_logged_in(
    activity_api: Api, contact: str
) -> None:
    times = [
        "2025-06-03T08:00:00Z",
        "2024-01-01T00:00:00Z",
        "2025-06-03T08:00:00.001Z",
        "2025-12-31T23:59:59.999+00:00",
        "2025-06-03T09:00:00+02:00",  # 07:00Z
    ]
    logged = {t: log(activity_api, contact, ADMIN, occurred_at=t)["id"] for t in times}
    now = log(activity_api, contact, ADMIN, body="logged now, happened now")["id"]

    page = get(activity_api, timeline(contact), VIEWER)

    assert [a["id"] for a in page["items"]] == [
        now,
        logged["2025-12-31T23:59:59.999+00:00"],
        logged["2025-06-03T08:00:00.001Z"],
        logged["2025-06-03T08:00:00Z"],
        logged["2025-06-03T09:00:00+02:00"],
        logged["2024-01-01T00:00:00Z"],
    ]
    occurred = [a["occurred_at"] for a in page["items"]]
    assert occurred == sorted(occurred, reverse=True)
    assert page["next_cursor"] is None


def test_the_timeline_holds_every_type_in_full(activity_api: Api, contact: str) -> None:
    logged = {t: log(activity_api, contact, ADMIN, **body) for t, body in BODIES.items()}

    items = get(activity_api, timeline(contact), VIEWER)["items"]

    by_id = {a["id"]: a for a in items}
    assert by_id == {a["id"]: a for a in logged.values()}
    assert by_id[logged["email"]["id"]]["from"] == "ada@example.com"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_paging_through_activities_of_the_same_millisecond(
    activity_api: Api, contact: str, limit: int
) -> None:
    logged = [log(activity_api, contact, ADMIN, occurred_at=SAME)["id"] for _ in range(7)]
    before = log(activity_api, contact, ADMIN, occurred_at="2025-06-01T11:59:59.999Z")["id"]
    after = log(activity_api, contact, ADMIN, occurred_at="2025-06-01T12:00:00.001Z")["id"]

    pages = walk(activity_api, timeline(contact), VIEWER, limit=limit)

    seen = [a["id"] for page in pages for a in page]
    assert len(seen) == len(set(seen)) == 9
    assert seen[0] == after
    assert seen[-1] == before
    assert set(seen[1:-1]) == set(logged)
    # Within the millisecond, the order is the ids' (descending), stable across pages.
    assert seen[1:-1] == sorted(logged, reverse=True)
    assert all(len(page) == limit for page in pages[:-1])


def test_a_walk_sees_each_activity_once_with_writes_in_between(
    activity_api: Api, contact: str
) -> None:
    older = [log(activity_api, contact, ADMIN, occurred_at=SAME)["id"] for _ in range(4)]
    first = get(activity_api, timeline(contact), VIEWER, query={"limit": "2"})
    # Newer activities arrive during the walk; they belong before its first page.
    log(activity_api, contact, ADMIN)

    rest = walk(activity_api, timeline(contact), VIEWER, {"cursor": first["next_cursor"]})

    seen = ids(first["items"]) + [a["id"] for page in rest for a in page]
    assert seen == sorted(older, reverse=True)


def test_one_type(activity_api: Api, contact: str) -> None:
    calls = [log(activity_api, contact, ADMIN, **BODIES["call"])["id"] for _ in range(3)]
    for _ in range(3):
        log(activity_api, contact, ADMIN)
    log(activity_api, contact, ADMIN, **BODIES["task"])

    for limit in (1, 2, 5):
        assert walk_ids(activity_api, contact, {"type": "call"}, limit) == sorted(
            calls, reverse=True
        )
    assert walk_ids(activity_api, contact, {"type": "email"}, 2) == []


def test_several_types(activity_api: Api, contact: str) -> None:
    wanted = []
    for n in range(3):
        wanted.append(log(activity_api, contact, ADMIN, **BODIES["call"])["id"])
        log(activity_api, contact, ADMIN, body=f"note {n}")
        wanted.append(log(activity_api, contact, ADMIN, **BODIES["email"])["id"])
        log(activity_api, contact, ADMIN, **BODIES["meeting"])

    for limit in (1, 2, 4, 100):
        seen = walk_ids(activity_api, contact, {"type": "call,email"}, limit)
        assert sorted(seen) == sorted(wanted), limit
        assert len(seen) == len(set(seen))
    # The same type twice is the type once; the order of the list does not matter.
    assert walk_ids(activity_api, contact, {"type": "email,call,call"}, 3) == walk_ids(
        activity_api, contact, {"type": "call,email"}, 3
    )


def test_repeated_type_parameters_as_the_http_api_sends_them(
    activity_api: Api, contact: str
) -> None:
    call = log(activity_api, contact, ADMIN, **BODIES["call"])["id"]
    email = log(activity_api, contact, ADMIN, **BODIES["email"])["id"]
    log(activity_api, contact, ADMIN)
    # `?type=call&type=email`: HTTP API 2.0 joins the values with commas.
    event = activity_api.event("GET", timeline(contact), VIEWER, query={"type": "call,email"})
    event["rawQueryString"] = "type=call&type=email"

    reply = activity_api.send(event)

    assert reply.status == 200, reply.text
    assert sorted(ids(reply.json["items"])) == sorted([call, email])


def test_a_time_window(activity_api: Api, contact: str) -> None:
    at = {
        t: log(activity_api, contact, ADMIN, occurred_at=t)["id"]
        for t in (
            "2025-05-31T23:59:59.999Z",
            "2025-06-01T00:00:00.000Z",
            "2025-06-15T12:00:00.000Z",
            "2025-06-30T23:59:59.999Z",
            "2025-07-01T00:00:00.000Z",
        )
    }
    june = {"since": "2025-06-01T00:00:00Z", "until": "2025-07-01T00:00:00Z"}

    # `since` is included, `until` is not.
    assert walk_ids(activity_api, contact, june, 1) == [
        at["2025-06-30T23:59:59.999Z"],
        at["2025-06-15T12:00:00.000Z"],
        at["2025-06-01T00:00:00.000Z"],
    ]
    assert walk_ids(activity_api, contact, {"since": "2025-06-30T23:59:59.999Z"}, 5) == [
        at["2025-07-01T00:00:00.000Z"],
        at["2025-06-30T23:59:59.999Z"],
    ]
    assert walk_ids(activity_api, contact, {"until": "2025-06-01T02:00:00+02:00"}, 5) == [
        at["2025-05-31T23:59:59.999Z"]
    ]
    assert walk_ids(activity_api, contact, {"until": "1970-01-01T00:00:00.001Z"}, 5) == []


def test_a_time_window_and_types(activity_api: Api, contact: str) -> None:
    june_call = log(activity_api, contact, ADMIN, **{**BODIES["call"], "occurred_at": SAME})["id"]
    log(activity_api, contact, ADMIN, **{**BODIES["call"], "occurred_at": "2025-05-01T00:00Z"})
    june_email = log(activity_api, contact, ADMIN, **{**BODIES["email"], "occurred_at": SAME})
    log(activity_api, contact, ADMIN, occurred_at=SAME)
    window = {"since": "2025-06-01T00:00:00Z", "until": "2025-07-01T00:00:00Z"}

    assert walk_ids(activity_api, contact, {**window, "type": "call"}, 1) == [june_call]
    both = walk_ids(activity_api, contact, {**window, "type": "call,email"}, 1)
    assert sorted(both) == sorted([june_call, june_email["id"]])


def test_the_timeline_is_the_contacts_own(api: Api, activity_api: Api, contact: str) -> None:
    other = new_contact(api, ADMIN, "bob@example.com")
    mine = log(activity_api, contact, ADMIN)["id"]
    log(activity_api, other, ADMIN)
    assert walk_ids(activity_api, contact, None, 1) == [mine]


def test_a_deleted_activity_leaves_the_timeline(activity_api: Api, contact: str) -> None:
    kept = log(activity_api, contact, ADMIN)["id"]
    gone = log(activity_api, contact, ADMIN)["id"]
    reply = activity_api.call("DELETE", f"/contacts/{contact}/activities/{gone}", ADMIN)
    assert reply.status == 204
    assert walk_ids(activity_api, contact, None, 1) == [kept]
    assert walk_ids(activity_api, contact, {"type": "note"}, 1) == [kept]


def test_a_cursor_is_bound_to_its_contact(api: Api, activity_api: Api, contact: str) -> None:
    other = new_contact(api, ADMIN, "bob@example.com")
    for contact_id in (contact, other):
        for _ in range(2):
            log(activity_api, contact_id, ADMIN)
    first = get(activity_api, timeline(contact), VIEWER, query={"limit": "1"})

    reply = activity_api.call(
        "GET", timeline(other), VIEWER, query={"cursor": first["next_cursor"]}
    )

    assert_problem(reply, 400)


# AWS calls ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [{}, {"type": "note"}, {"type": "note,call"}, {"since": "2025-01-01T00:00:00Z"}],
    ids=["all", "one-type", "types", "window"],
)
def test_each_page_is_one_get_and_one_query(
    activity_api: Api, table: Any, contact: str, query: dict[str, str]
) -> None:
    for _ in range(3):
        log(activity_api, contact, ADMIN)
        log(activity_api, contact, ADMIN, **BODIES["call"])
    cursor = None
    pages = 0
    while True:
        params = {**query, "limit": "2", **({"cursor": cursor} if cursor else {})}
        with count_calls(table.client, activities_client()) as calls:
            page = get(activity_api, timeline(contact), VIEWER, query=params)
        assert calls.by_operation == {"GetItem": 1, "Query": 1}, calls.calls
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2


def test_logging_is_one_read_and_one_transaction(
    activity_api: Api, table: Any, contact: str
) -> None:
    with count_calls(table.client, activities_client()) as calls:
        log(activity_api, contact, ADMIN, **BODIES["task"])
    assert calls.calls == ["GetItem", "TransactWriteItems"]
