"""Activities that name a deal, and the deal's timeline: GET /deals/{id}/timeline lists them,
newest first, across the deal's contacts; a changed or removed `deal_id` moves the activity
between timelines; merges and deletes of contacts keep every link right."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.ids import new_ulid
from crm_core.table import MAX_TRANSACTION_ITEMS, Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.activities import BODIES, activities_client, log, path
from tests.support.api import Api, LambdaContext, User
from tests.support.aws_calls import count_calls
from tests.support.calls import create, get, ids, patch, walk
from tests.support.checks import assert_problem, table_items
from tests.support.events import delivered

ADMIN = User("acme", ("admin",), sub="admin-1")
SALES = User("acme", ("sales",), sub="sales-1")
SALES_2 = User("acme", ("sales",), sub="sales-2")
VIEWER = User("acme", ("viewer",), sub="viewer-1")
GLOBEX = User("globex", ("admin",), sub="globex-admin")


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("activity_events")


def person(api: Api, name: str, user: User = ADMIN) -> str:
    return str(create(api, "/contacts", user, {"email": f"{name}@example.com"})["id"])


def new_deal(deals_api: Api, contacts: list[str], user: User = SALES) -> str:
    body = {
        "name": "Renewal",
        "amount": "1000.00",
        "currency": "USD",
        "close_date": "2027-02-28",
        "contacts": [{"contact_id": c} for c in contacts],
    }
    return str(create(deals_api, "/deals", user, body)["id"])


def timeline(activity_api: Api, deal_id: str, user: User = VIEWER) -> list[dict[str, Any]]:
    """The whole timeline, page after page of two."""
    return [i for page in walk(activity_api, f"/deals/{deal_id}/timeline", user) for i in page]


def links(table: Table, deal_id: str, tenant: str = "acme") -> list[dict[str, Any]]:
    items = table.query_all(None, keys.deal_partition(tenant, deal_id), sort_below="B")
    return [i for i in items if i["SK"].startswith(keys.ACTIVITY_PREFIX)]


def outbox(table: Table, contact_id: str, detail_type: str) -> list[dict[str, Any]]:
    partition = keys.contact("acme", contact_id)["PK"]
    items = table.query_all(None, partition, sort_below="P", consistent=True)
    found = [i for i in items if i["SK"].startswith(keys.OUTBOX_PREFIX)]
    return [i for i in found if i["detail_type"] == detail_type]


def test_a_deals_activities_are_its_timeline_newest_first(
    api: Api, activity_api: Api, deals_api: Api, table: Table
) -> None:
    ann, bob = person(api, "ann"), person(api, "bob")
    deal, other = new_deal(deals_api, [ann, bob]), new_deal(deals_api, [ann])
    note = log(activity_api, ann, SALES, **{**BODIES["note"], "deal_id": deal})
    call = log(activity_api, bob, SALES, **{**BODIES["call"], "deal_id": deal})
    meeting = log(activity_api, ann, SALES, **{**BODIES["meeting"], "deal_id": deal})
    task = log(activity_api, bob, SALES, **{**BODIES["task"], "deal_id": deal})
    log(activity_api, ann, SALES, **BODIES["email"])
    log(activity_api, ann, SALES, deal_id=other)

    assert note["deal_id"] == deal
    assert get(activity_api, path(call), VIEWER)["deal_id"] == deal
    listed = timeline(activity_api, deal)
    # Newest first by when they happened, whoever's they are.
    assert ids(listed) == [task["id"], meeting["id"], call["id"], note["id"]]
    assert listed == [get(activity_api, path(a), VIEWER) for a in (task, meeting, call, note)]
    assert {a["contact_id"] for a in listed} == {ann, bob}
    assert len(links(table, deal)) == 4
    # The event says which deal (deal_rotting and reports read it there).
    (logged,) = [
        i
        for i in outbox(table, bob, "ActivityLogged")
        if json.loads(i["detail"])["data"]["activity"]["id"] == call["id"]
    ]
    assert json.loads(logged["detail"])["data"]["activity"]["deal_id"] == deal


def test_a_deal_id_names_a_deal_of_yours(
    api: Api, activity_api: Api, deals_api: Api, table: Table
) -> None:
    ann = person(api, "ann")
    theirs = new_deal(deals_api, [], user=GLOBEX)
    before = table_items(table)
    for deal_id in (new_ulid(), theirs):
        reply = activity_api.call(
            "POST", f"/contacts/{ann}/activities", SALES, {**BODIES["note"], "deal_id": deal_id}
        )
        body = assert_problem(reply, 422, field="deal_id")
        assert ["body", "deal_id"] in [e["loc"] for e in body["errors"]]
    reply = activity_api.call(
        "POST", f"/contacts/{ann}/activities", SALES, {**BODIES["note"], "deal_id": "nope"}
    )
    assert_problem(reply, 422, field="deal_id")
    assert table_items(table) == before

    note = log(activity_api, ann, SALES)
    before = table_items(table)
    reply = activity_api.call("PATCH", path(note), SALES, {"deal_id": theirs})
    assert_problem(reply, 422, field="deal_id")
    assert table_items(table) == before


def test_the_timeline_of_a_deal_you_do_not_have_is_404(
    api: Api, activity_api: Api, deals_api: Api
) -> None:
    ann = person(api, "ann")
    mine = new_deal(deals_api, [ann])
    log(activity_api, ann, SALES, deal_id=mine)
    theirs = new_deal(deals_api, [], user=GLOBEX)
    for deal_id in (new_ulid(), theirs):
        assert_problem(activity_api.call("GET", f"/deals/{deal_id}/timeline", SALES), 404)
    # ...and another tenant reading mine finds nothing either.
    assert_problem(activity_api.call("GET", f"/deals/{mine}/timeline", GLOBEX), 404)
    empty = new_deal(deals_api, [ann])
    assert get(activity_api, f"/deals/{empty}/timeline", VIEWER) == {
        "items": [],
        "next_cursor": None,
    }
    reply = activity_api.call("GET", f"/deals/{mine}/timeline", SALES, query={"cursor": "x"})
    assert_problem(reply, 400)
    reply = activity_api.call("GET", f"/deals/{mine}/timeline", SALES, query={"limit": "101"})
    assert_problem(reply, 422)


def test_a_changed_deal_id_moves_the_activity_between_timelines(
    api: Api, activity_api: Api, deals_api: Api, table: Table
) -> None:
    ann = person(api, "ann")
    first, second = new_deal(deals_api, [ann]), new_deal(deals_api, [ann])
    note = log(activity_api, ann, SALES, deal_id=first)

    moved = patch(activity_api, path(note), SALES, {"deal_id": second})
    assert moved["deal_id"] == second
    assert moved["version"] == 2
    assert timeline(activity_api, first) == []
    assert ids(timeline(activity_api, second)) == [note["id"]]
    assert links(table, first) == []
    (updated,) = outbox(table, ann, "ActivityUpdated")
    data = json.loads(updated["detail"])["data"]
    assert data["changed"] == ["deal_id"]
    assert data["activity"]["deal_id"] == second

    # The same deal again changes nothing; other fields leave the link where it is.
    assert patch(activity_api, path(note), SALES, {"deal_id": second})["version"] == 2
    patch(activity_api, path(note), SALES, {"body": "Met again."})
    assert timeline(activity_api, second)[0]["body"] == "Met again."

    cleared = patch(activity_api, path(note), SALES, {"deal_id": None})
    assert cleared["deal_id"] is None
    assert timeline(activity_api, second) == []
    assert links(table, second) == []

    patch(activity_api, path(note), SALES, {"deal_id": first})
    assert ids(timeline(activity_api, first)) == [note["id"]]
    assert activity_api.call("DELETE", path(note), SALES).status == 204
    assert timeline(activity_api, first) == []
    assert links(table, first) == []


def test_only_the_author_or_an_admin_changes_the_deal_of_a_task(
    api: Api, activity_api: Api, deals_api: Api
) -> None:
    ann = person(api, "ann")
    deal = new_deal(deals_api, [ann])
    todo = log(activity_api, ann, SALES, **{**BODIES["task"], "assignee_id": SALES_2.sub})
    reply = activity_api.call("PATCH", path(todo), SALES_2, {"deal_id": deal})
    assert_problem(reply, 403)
    assert patch(activity_api, path(todo), ADMIN, {"deal_id": deal})["deal_id"] == deal


def test_a_deleted_deal_keeps_its_timeline_and_takes_no_new_activity(
    api: Api, activity_api: Api, deals_api: Api
) -> None:
    ann = person(api, "ann")
    deal, bare = new_deal(deals_api, [ann]), new_deal(deals_api, [ann])
    note = log(activity_api, ann, SALES, deal_id=deal)
    for deal_id in (deal, bare):
        assert deals_api.call("DELETE", f"/deals/{deal_id}", SALES).status == 204
    # As its history, its timeline outlives it; one without activities is simply gone.
    assert ids(timeline(activity_api, deal)) == [note["id"]]
    assert_problem(activity_api.call("GET", f"/deals/{bare}/timeline", SALES), 404)
    reply = activity_api.call(
        "POST", f"/contacts/{ann}/activities", SALES, {**BODIES["note"], "deal_id": deal}
    )
    assert_problem(reply, 422, field="deal_id")


@pytest.fixture
def move_transactions(function: ConsumerFunction) -> Iterator[list[int]]:
    """The number of items of each transaction the activity_events function writes."""
    store_table: Table = function.context.store.table
    sizes: list[int] = []
    original = store_table.transact

    def counted(operations: Any) -> None:
        sizes.append(len(operations))
        original(operations)

    store_table.transact = counted  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        del store_table.transact


def test_a_merge_points_the_links_at_the_survivor(
    api: Api,
    activity_api: Api,
    deals_api: Api,
    table: Table,
    function: ConsumerFunction,
    move_transactions: list[int],
) -> None:
    keep, loser = person(api, "keep"), person(api, "loser")
    deal = new_deal(deals_api, [keep, loser])
    own = [log(activity_api, keep, SALES, deal_id=deal) for _ in range(2)]
    # More than one transaction's worth of activities on the deal (3 items each to move).
    theirs = [log(activity_api, loser, SALES, deal_id=deal) for _ in range(40)]
    theirs += [log(activity_api, loser, SALES) for _ in range(3)]
    merged = create_merge(api, keep, loser)
    (event,) = outbox(table, keep, "ContactMerged")
    assert merged["id"] == keep

    assert function.handler(delivered(event), LambdaContext()) == {"moved": 43}
    assert len(move_transactions) >= 2
    assert max(move_transactions) <= MAX_TRANSACTION_ITEMS
    listed = timeline(activity_api, deal)
    assert sorted(ids(listed)) == sorted(a["id"] for a in own + theirs[:40])
    assert {a["contact_id"] for a in listed} == {keep}
    assert {link["contact_id"] for link in links(table, deal)} == {keep}
    assert len(links(table, deal)) == 42


def create_merge(api: Api, keep: str, loser: str) -> dict[str, Any]:
    reply = api.call("POST", f"/contacts/{keep}/merge", ADMIN, {"from_id": loser})
    assert reply.status == 200, reply.text
    merged: dict[str, Any] = reply.json
    return merged


def test_a_deleted_contacts_activities_leave_the_deal_timeline(
    api: Api, activity_api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    ann, bob = person(api, "ann"), person(api, "bob")
    deal = new_deal(deals_api, [ann, bob])
    kept = log(activity_api, bob, SALES, deal_id=deal)
    for _ in range(3):
        log(activity_api, ann, SALES, deal_id=deal)
    assert api.call("DELETE", f"/contacts/{ann}", ADMIN).status == 204
    (event,) = outbox(table, ann, "ContactDeleted")
    assert function.handler(delivered(event), LambdaContext()) == {"deleted": 3}
    assert ids(timeline(activity_api, deal)) == [kept["id"]]
    assert [link["activity_id"] for link in links(table, deal)] == [kept["id"]]


def test_the_activities_function_reads_a_timeline_page_in_two_calls(
    api: Api, activity_api: Api, deals_api: Api
) -> None:
    ann, bob = person(api, "ann"), person(api, "bob")
    deal = new_deal(deals_api, [ann, bob])
    for contact in (ann, bob, ann):
        log(activity_api, contact, SALES, deal_id=deal)
    with count_calls(activities_client()) as calls:
        page = get(activity_api, f"/deals/{deal}/timeline", SALES, query={"limit": "100"})
    assert len(page["items"]) == 3
    assert calls.calls == ["Query", "BatchGetItem"]
