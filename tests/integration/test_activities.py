"""Activities as a client sees them: log each type, read, change, delete; who may do what;
the contact's summary; merged contacts; another tenant; idempotency; the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_core.auth import PERMISSIONS, Action, Role
from crm_core.events.catalog import event_type
from crm_core.ids import is_ulid, new_ulid, ulid_time_prefix
from tests.support.activities import (
    BODIES,
    TYPES,
    activity_store,
    contact_summary,
    log,
    new_contact,
    path,
    task,
)
from tests.support.api import Api, User, template_routes
from tests.support.calls import create, get, patch
from tests.support.checks import assert_problem, table_items, tenant_items

ADMIN = User("acme", ("admin",), sub="admin-1")
SALES = User("acme", ("sales",), sub="sales-1")
SALES_2 = User("acme", ("sales",), sub="sales-2")
SUPPORT = User("acme", ("support",), sub="support-1")
VIEWER = User("acme", ("viewer",), sub="viewer-1")
GLOBEX = User("globex", ("admin",), sub="globex-admin")
ROLES = ("admin", "sales", "marketing", "support", "viewer")


@pytest.fixture
def contact(api: Api) -> str:
    return new_contact(api, ADMIN)


def outbox(table: Any) -> list[dict[str, Any]]:
    items = [i for i in table_items(table) if i.get("type", {}).get("S") == "outbox_event"]
    return sorted(items, key=lambda i: i["event_id"]["S"])


def detail(item: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(item["detail"]["S"])
    return found


# Log and read ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activity_type", TYPES)
def test_log_each_type_and_read_it_back(
    activity_api: Api, contact: str, activity_type: str
) -> None:
    body = BODIES[activity_type]

    reply = activity_api.call("POST", f"/contacts/{contact}/activities", SALES, body)

    assert reply.status == 201, reply.text
    logged = reply.json
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["location"] == f"/contacts/{contact}/activities/{logged['id']}"
    assert reply.headers["etag"] == '"1"'
    assert is_ulid(logged["id"])
    assert logged["type"] == activity_type
    assert logged["contact_id"] == contact
    assert logged["created_by"] == SALES.sub
    assert logged["version"] == 1
    assert logged["created_at"] == logged["updated_at"]
    occurred = datetime.fromisoformat(body["occurred_at"]).astimezone(UTC)
    assert logged["occurred_at"] == occurred.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # The id's time is when it happened, so the timeline's key order is time order.
    assert logged["id"][:10] == ulid_time_prefix(int(occurred.timestamp() * 1000))
    for name, value in body.items():
        if name not in ("occurred_at", "from", "starts_at", "ends_at", "due_at"):
            assert logged[name] == value, name

    got = activity_api.call("GET", reply.headers["location"], VIEWER)
    assert got.status == 200, got.text
    assert got.json == logged
    assert got.headers["etag"] == '"1"'


def test_each_type_returns_exactly_its_fields(activity_api: Api, contact: str) -> None:
    own = {"id", "contact_id", "type", "occurred_at", "created_by", "created_at", "updated_at"}
    own |= {"version", "deal_id"}
    expected = {
        "call": {"direction", "outcome", "duration_s", "body"},
        "email": {"direction", "subject", "from", "to", "cc", "body"},
        "meeting": {"title", "starts_at", "ends_at", "attendees", "location", "outcome", "body"},
        "note": {"body"},
        "task": {
            "subject",
            "due_at",
            "assignee_id",
            "priority",
            "status",
            "completed_at",
            "overdue_at",
            "body",
        },
    }
    for activity_type, body in BODIES.items():
        logged = log(activity_api, contact, ADMIN, **body)
        assert set(logged) == own | expected[activity_type], activity_type


def test_email_addresses_are_normalized_and_from_keeps_its_name(
    activity_api: Api, contact: str
) -> None:
    logged = log(activity_api, contact, ADMIN, **BODIES["email"])
    assert logged["from"] == "ada@example.com"
    assert "from_" not in logged
    assert get(activity_api, path(logged), ADMIN)["from"] == "ada@example.com"


def test_times_are_stored_in_utc_with_milliseconds(activity_api: Api, contact: str) -> None:
    logged = log(activity_api, contact, ADMIN, **BODIES["meeting"])
    assert logged["starts_at"] == "2025-06-03T07:00:00.000Z"
    assert logged["ends_at"] == "2025-06-03T08:00:00.000Z"
    note = log(activity_api, contact, ADMIN, occurred_at="2025-01-01T00:00:00.123456+01:00")
    assert note["occurred_at"] == "2024-12-31T23:00:00.123Z"


def test_occurred_at_defaults_to_now(activity_api: Api, contact: str) -> None:
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    logged = log(activity_api, contact, ADMIN, type="note", body="now")
    assert before <= logged["occurred_at"][:19] <= logged["created_at"][:19]


def test_a_task_is_assigned_to_its_author_unless_told(activity_api: Api, contact: str) -> None:
    mine = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z")
    theirs = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z", assignee_id=SUPPORT.sub)

    assert mine["assignee_id"] == SALES.sub
    assert (mine["status"], mine["priority"], mine["completed_at"]) == ("open", "medium", None)
    assert theirs["assignee_id"] == SUPPORT.sub
    assert theirs["created_by"] == SALES.sub


def test_a_task_logged_as_completed_has_its_completion_time(
    activity_api: Api, contact: str
) -> None:
    done = task(activity_api, contact, SALES, "2025-01-01T09:00:00Z", status="completed")
    assert done["status"] == "completed"
    assert done["completed_at"] == done["created_at"]


def test_marketing_and_support_log_too(activity_api: Api, contact: str) -> None:
    for role in ("marketing", "support"):
        logged = log(activity_api, contact, User("acme", (role,)), body=f"by {role}")
        assert logged["body"] == f"by {role}"


# The contact's summary ------------------------------------------------------------------------
def test_the_contact_shows_its_latest_activity_and_counts(
    api: Api, activity_api: Api, contact: str
) -> None:
    assert contact_summary(api, contact, ADMIN) == (None, {})

    log(activity_api, contact, ADMIN, occurred_at="2025-06-01T10:00:00Z")
    log(activity_api, contact, ADMIN, **BODIES["call"])  # 2025-06-02T09:30Z
    log(activity_api, contact, ADMIN, occurred_at="2025-05-01T10:00:00Z")  # older: no move

    assert contact_summary(api, contact, ADMIN) == (
        "2025-06-02T09:30:00.000Z",
        {"note": 2, "call": 1},
    )
    # Logging changes only the summary: the contact's version and updated_at stay.
    assert get(api, f"/contacts/{contact}", ADMIN)["version"] == 1


def test_delete_takes_back_the_count_and_the_latest_time(
    api: Api, activity_api: Api, contact: str
) -> None:
    oldest = log(activity_api, contact, ADMIN, occurred_at="2025-06-01T10:00:00Z")
    middle = log(activity_api, contact, ADMIN, **BODIES["call"])  # 2025-06-02T09:30Z
    newest = log(activity_api, contact, ADMIN, occurred_at="2025-06-05T10:00:00Z")

    assert activity_api.call("DELETE", path(newest), ADMIN).status == 204
    assert contact_summary(api, contact, ADMIN) == (
        "2025-06-02T09:30:00.000Z",
        {"note": 1, "call": 1},
    )
    assert activity_api.call("DELETE", path(oldest), ADMIN).status == 204
    assert contact_summary(api, contact, ADMIN) == ("2025-06-02T09:30:00.000Z", {"call": 1})
    assert activity_api.call("DELETE", path(middle), ADMIN).status == 204
    assert contact_summary(api, contact, ADMIN) == (None, {})


def test_delete_of_one_of_two_at_the_same_instant_keeps_the_time(
    api: Api, activity_api: Api, contact: str
) -> None:
    same = "2025-06-01T10:00:00Z"
    first = log(activity_api, contact, ADMIN, occurred_at=same)
    log(activity_api, contact, ADMIN, occurred_at=same)

    assert activity_api.call("DELETE", path(first), ADMIN).status == 204

    assert contact_summary(api, contact, ADMIN) == ("2025-06-01T10:00:00.000Z", {"note": 1})


# Change ---------------------------------------------------------------------------------------
def test_the_author_changes_an_activity(activity_api: Api, contact: str) -> None:
    call = log(activity_api, contact, SALES, **BODIES["call"])

    reply = activity_api.call(
        "PATCH", path(call), SALES, {"outcome": "left_voicemail", "body": None}
    )

    assert reply.status == 200, reply.text
    assert reply.headers["etag"] == '"2"'
    changed = reply.json
    assert changed["outcome"] == "left_voicemail"
    assert changed["body"] is None
    assert changed["version"] == 2
    assert changed["duration_s"] == 300
    assert (changed["created_at"], changed["occurred_at"]) == (
        call["created_at"],
        call["occurred_at"],
    )
    assert changed["updated_at"] >= call["updated_at"]
    assert get(activity_api, path(call), VIEWER) == changed


def test_a_change_is_checked_by_the_types_rules(activity_api: Api, contact: str) -> None:
    meeting = log(activity_api, contact, SALES, **BODIES["meeting"])

    early = activity_api.call("PATCH", path(meeting), SALES, {"ends_at": "2025-06-03T06:00:00Z"})
    foreign = activity_api.call("PATCH", path(meeting), SALES, {"direction": "inbound"})
    moved = patch(activity_api, path(meeting), SALES, {"ends_at": "2025-06-03T09:30:00+02:00"})

    assert_problem(early, 422)
    assert_problem(foreign, 422, field="direction")
    assert moved["ends_at"] == "2025-06-03T07:30:00.000Z"


def test_only_the_author_or_an_admin_changes_an_activity(activity_api: Api, contact: str) -> None:
    note = log(activity_api, contact, SALES, body="mine")

    for other in (SALES_2, SUPPORT, User("acme", ("marketing",))):
        assert_problem(activity_api.call("PATCH", path(note), other, {"body": "theirs"}), 403)
    assert_problem(activity_api.call("PATCH", path(note), VIEWER, {"body": "theirs"}), 403)
    assert get(activity_api, path(note), ADMIN)["version"] == 1

    by_admin = patch(activity_api, path(note), ADMIN, {"body": "fixed by the admin"})
    assert by_admin["body"] == "fixed by the admin"
    assert by_admin["created_by"] == SALES.sub


def test_a_stale_if_match_is_412_and_a_current_one_succeeds(
    activity_api: Api, contact: str
) -> None:
    note = log(activity_api, contact, SALES, body="v1")
    patch(activity_api, path(note), SALES, {"body": "v2"}, headers={"if-match": '"1"'})

    stale = activity_api.call(
        "PATCH", path(note), SALES, {"body": "v3"}, headers={"if-match": '"1"'}
    )
    gone = activity_api.call("DELETE", path(note), SALES, headers={"if-match": '"1"'})

    assert_problem(stale, 412)
    assert_problem(gone, 412)
    assert get(activity_api, path(note), SALES)["body"] == "v2"
    done = activity_api.call("DELETE", path(note), SALES, headers={"if-match": 'W/"2"'})
    assert done.status == 204, done.text


def test_a_patch_that_changes_nothing_keeps_the_version(activity_api: Api, contact: str) -> None:
    note = log(activity_api, contact, SALES, body="same")
    reply = activity_api.call("PATCH", path(note), SALES, {"body": "same"})
    assert reply.status == 200, reply.text
    assert reply.json == note
    assert reply.headers["etag"] == '"1"'


# Tasks: the assignee completes ----------------------------------------------------------------
def test_the_assignee_completes_and_reopens_a_task(activity_api: Api, contact: str) -> None:
    todo = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z", assignee_id=SUPPORT.sub)

    done = patch(activity_api, path(todo), SUPPORT, {"status": "completed"})

    assert done["status"] == "completed"
    assert done["completed_at"] is not None
    assert done["completed_at"] >= todo["created_at"]
    assert done["version"] == 2
    mine = {"assignee": "me"}
    open_ids = [t["id"] for t in get(activity_api, "/tasks", SUPPORT, query=mine)["items"]]
    completed = get(activity_api, "/tasks", SUPPORT, query={**mine, "status": "completed"})
    assert todo["id"] not in open_ids
    assert [t["id"] for t in completed["items"]] == [todo["id"]]

    reopened = patch(activity_api, path(todo), SUPPORT, {"status": "open"})

    assert reopened["status"] == "open"
    assert reopened["completed_at"] is None
    open_ids = [t["id"] for t in get(activity_api, "/tasks", SUPPORT, query=mine)["items"]]
    assert open_ids == [todo["id"]]
    assert get(activity_api, "/tasks", SUPPORT, query={**mine, "status": "completed"}) == {
        "items": [],
        "next_cursor": None,
    }


def test_the_assignee_may_change_only_the_status(activity_api: Api, contact: str) -> None:
    todo = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z", assignee_id=SUPPORT.sub)

    for change in ({"subject": "Mine now"}, {"status": "completed", "due_at": "2031-01-01T00:00Z"}):
        assert_problem(activity_api.call("PATCH", path(todo), SUPPORT, change), 403)
    assert_problem(activity_api.call("DELETE", path(todo), SUPPORT), 403)
    # Another user, neither author nor assignee, may not even complete it.
    assert_problem(activity_api.call("PATCH", path(todo), SALES_2, {"status": "completed"}), 403)
    assert get(activity_api, path(todo), SUPPORT)["version"] == 1


def test_completing_twice_keeps_the_first_completion_time(activity_api: Api, contact: str) -> None:
    todo = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z")
    done = patch(activity_api, path(todo), SALES, {"status": "completed"})
    again = patch(activity_api, path(todo), SALES, {"status": "completed", "priority": "low"})
    assert again["completed_at"] == done["completed_at"]


def test_a_task_cannot_lose_its_assignee(activity_api: Api, contact: str) -> None:
    todo = task(activity_api, contact, SALES, "2030-01-01T09:00:00Z")
    assert_problem(activity_api.call("PATCH", path(todo), SALES, {"assignee_id": None}), 422)


# Delete ---------------------------------------------------------------------------------------
def test_the_author_or_an_admin_deletes(activity_api: Api, contact: str) -> None:
    first = log(activity_api, contact, SALES, body="one")
    second = log(activity_api, contact, SALES, body="two")

    assert_problem(activity_api.call("DELETE", path(first), SALES_2), 403)
    assert_problem(activity_api.call("DELETE", path(first), VIEWER), 403)
    by_author = activity_api.call("DELETE", path(first), SALES)
    by_admin = activity_api.call("DELETE", path(second), ADMIN)

    assert (by_author.status, by_author.text) == (204, "")
    assert by_admin.status == 204
    for gone in (first, second):
        assert_problem(activity_api.call("GET", path(gone), SALES), 404)
        assert_problem(activity_api.call("DELETE", path(gone), SALES), 404)


# Missing, merged, and another tenant's --------------------------------------------------------
def test_an_unknown_contact_is_404(activity_api: Api, contact: str) -> None:
    missing = new_ulid()
    calls = [
        ("POST", f"/contacts/{missing}/activities", BODIES["note"]),
        ("GET", f"/contacts/{missing}/activities/{new_ulid()}", None),
        ("PATCH", f"/contacts/{missing}/activities/{new_ulid()}", {"body": "x"}),
        ("DELETE", f"/contacts/{missing}/activities/{new_ulid()}", None),
        ("GET", f"/contacts/{missing}/timeline", None),
        ("GET", f"/contacts/{contact}/activities/{new_ulid()}", None),
    ]
    for method, where, body in calls:
        assert_problem(activity_api.call(method, where, ADMIN, body), 404)


def test_an_activity_is_found_only_under_its_own_contact(
    api: Api, activity_api: Api, contact: str
) -> None:
    other = new_contact(api, ADMIN, "bob@example.com")
    note = log(activity_api, contact, ADMIN)

    reply = activity_api.call("GET", f"/contacts/{other}/activities/{note['id']}", ADMIN)

    assert_problem(reply, 404)


def test_another_tenants_contacts_and_activities_are_404(
    api: Api, activity_api: Api, table: Any, contact: str
) -> None:
    theirs = log(activity_api, contact, ADMIN, **BODIES["task"])
    mine = new_contact(api, GLOBEX, "ada@globex.example")
    before = tenant_items(table, "acme")

    for role in ROLES:
        b = User("globex", (role,), sub="globex-user")
        allowed_write = Action.ACTIVITY_WRITE in PERMISSIONS[Role(role)]
        write_status = 404 if allowed_write else 403
        calls: list[tuple[str, str, Any, int]] = [
            ("POST", f"/contacts/{contact}/activities", BODIES["note"], write_status),
            ("GET", path(theirs), None, 404),
            ("PATCH", path(theirs), {"status": "completed"}, write_status),
            ("DELETE", path(theirs), None, write_status),
            ("GET", f"/contacts/{contact}/timeline", None, 404),
            # Their activity id under one of B's own contacts.
            ("GET", f"/contacts/{mine}/activities/{theirs['id']}", None, 404),
            ("PATCH", f"/contacts/{mine}/activities/{theirs['id']}", {"body": "x"}, write_status),
            ("DELETE", f"/contacts/{mine}/activities/{theirs['id']}", None, write_status),
        ]
        for method, where, body, status in calls:
            reply = activity_api.call(method, where, b, body)
            missing = activity_api.call(method, where.replace(contact, new_ulid()), b, body)
            assert_problem(reply, status)
            assert theirs["id"] not in reply.text
            if contact in where:
                assert reply.json == missing.json, (method, where)
        tasks = get(activity_api, "/tasks", b)
        assert tasks == {"items": [], "next_cursor": None}
        assigned = get(activity_api, "/tasks", b, query={"assignee": ADMIN.sub})
        assert assigned == {"items": [], "next_cursor": None}

    assert tenant_items(table, "acme") == before


def test_a_merged_contact_redirects_reads_and_refuses_writes(
    api: Api, activity_api: Api, contact: str
) -> None:
    loser = new_contact(api, ADMIN, "ada.old@example.com")
    note = log(activity_api, loser, SALES, body="before the merge")
    merged = api.call("POST", f"/contacts/{contact}/merge", ADMIN, {"from_id": loser})
    assert merged.status == 200, merged.text

    # Until its activities are moved (the activity_events consumer), they are still read...
    assert get(activity_api, path(note), SALES)["contact_id"] == loser
    # ...but the merged contact takes no new ones, and its timeline redirects.
    logged = activity_api.call("POST", f"/contacts/{loser}/activities", SALES, BODIES["note"])
    body = assert_problem(logged, 409)
    assert body["merged_into"] == contact
    timeline = activity_api.call("GET", f"/contacts/{loser}/timeline", SALES, query={"limit": "5"})
    body = assert_problem(timeline, 308)
    assert timeline.headers["location"] == f"/contacts/{contact}/timeline"
    assert body["merged_into"] == contact
    assert_problem(activity_api.call("DELETE", path(note), SALES), 409)

    assert activity_store().move_all("acme", loser, contact) == 1

    moved = activity_api.call("GET", path(note), SALES)
    assert_problem(moved, 308)
    assert moved.headers["location"] == f"/contacts/{contact}/activities/{note['id']}"
    assert get(activity_api, moved.headers["location"], SALES)["body"] == "before the merge"
    for method, body in (("PATCH", {"body": "x"}), ("DELETE", None)):
        refused = assert_problem(activity_api.call(method, path(note), SALES, body), 409)
        assert refused["merged_into"] == contact


# Idempotency-Key ------------------------------------------------------------------------------
def test_an_idempotency_key_logs_once(
    api: Api, activity_api: Api, table: Any, contact: str
) -> None:
    where = f"/contacts/{contact}/activities"
    headers = {"Idempotency-Key": "log-call-1"}

    first = activity_api.call("POST", where, SALES, BODIES["call"], headers=headers)
    again = activity_api.call("POST", where, SALES, BODIES["call"], headers=headers)
    other_body = activity_api.call("POST", where, SALES, BODIES["note"], headers=headers)

    assert first.status == again.status == 201
    assert first.headers["idempotent-replayed"] == "false"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert_problem(other_body, 422)
    assert contact_summary(api, contact, ADMIN)[1] == {"call": 1}
    page = get(activity_api, f"/contacts/{contact}/timeline", SALES)
    assert [a["id"] for a in page["items"]] == [first.json["id"]]


# The outbox -----------------------------------------------------------------------------------
def test_each_change_writes_its_event_in_the_same_transaction(
    activity_api: Api, table: Any, contact: str
) -> None:
    before = len(outbox(table))

    logged = log(activity_api, contact, SALES, **BODIES["call"])

    items = outbox(table)
    assert len(items) == before + 1
    item = items[-1]
    assert item["PK"]["S"] == f"T#acme#C#{contact}"
    assert (item["source"]["S"], item["detail_type"]["S"]) == ("crm.activities", "ActivityLogged")
    event = detail(item)
    assert event["metadata"]["tenant_id"] == "acme"
    assert event["metadata"]["actor"] == {"type": "user", "id": SALES.sub}
    assert event["metadata"]["occurred_at"] == logged["created_at"]
    facts = event["data"]["activity"]
    assert facts["id"] == logged["id"]
    assert facts["contact_id"] == contact
    assert (facts["type"], facts["direction"], facts["outcome"]) == (
        "call",
        "outbound",
        "connected",
    )
    assert facts["duration_s"] == 300
    # Events carry facts, never the free text.
    assert "Talked pricing" not in item["detail"]["S"]
    model = event_type("crm.activities", "ActivityLogged")
    assert model is not None
    model.model_validate(event)

    patch(activity_api, path(logged), SALES, {"outcome": "busy"})
    updated = detail(outbox(table)[-1])
    assert updated["data"]["changed"] == ["outcome"]
    assert updated["data"]["activity"]["outcome"] == "busy"

    assert activity_api.call("DELETE", path(logged), SALES).status == 204
    deleted = outbox(table)[-1]
    assert deleted["detail_type"]["S"] == "ActivityDeleted"
    assert detail(deleted)["data"]["activity"]["id"] == logged["id"]
    assert len(outbox(table)) == before + 3


def test_a_refused_log_writes_no_event(activity_api: Api, table: Any, contact: str) -> None:
    before = table_items(table)
    reply = activity_api.call("POST", f"/contacts/{new_ulid()}/activities", SALES, BODIES["note"])
    assert_problem(reply, 404)
    assert table_items(table) == before


# Roles ----------------------------------------------------------------------------------------
# The product rule: everyone reads activities and tasks; everyone but a viewer logs them;
# changing or deleting one also takes its author or an admin (tested above).
RULE = {
    "read": frozenset(ROLES),
    "log": frozenset({"admin", "sales", "marketing", "support"}),
}
ROUTE_RULES = {
    ("POST", "/contacts/{contact_id}/activities"): ("log", Action.ACTIVITY_WRITE, 201),
    ("GET", "/contacts/{contact_id}/activities/{activity_id}"): ("read", Action.ACTIVITY_READ, 200),
    ("PATCH", "/contacts/{contact_id}/activities/{activity_id}"): (
        "log",
        Action.ACTIVITY_WRITE,
        200,
    ),
    ("DELETE", "/contacts/{contact_id}/activities/{activity_id}"): (
        "log",
        Action.ACTIVITY_WRITE,
        204,
    ),
    ("GET", "/contacts/{contact_id}/timeline"): ("read", Action.ACTIVITY_READ, 200),
    ("GET", "/deals/{deal_id}/timeline"): ("read", Action.ACTIVITY_READ, 200),
    ("GET", "/tasks"): ("read", Action.ACTIVITY_READ, 200),
}


def test_every_route_of_the_function_has_a_rule() -> None:
    assert set(ROUTE_RULES) == set(template_routes("ActivitiesFunction"))


@pytest.mark.parametrize("role", ROLES)
def test_the_permission_table_follows_the_rule(role: str) -> None:
    granted = PERMISSIONS[Role(role)]
    for rule, action, _ in ROUTE_RULES.values():
        assert (action in granted) == (role in RULE[rule]), (role, action)


@pytest.fixture
def request_for(
    api: Api, activity_api: Api, deals_api: Api
) -> Callable[[str, str, User], tuple[str, Any]]:
    """For a route and a caller: the path to call (on their own activity) and the body."""
    contact = new_contact(api, ADMIN)
    deal = create(
        deals_api,
        "/deals",
        ADMIN,
        {"name": "Big one", "amount": "10.00", "currency": "USD", "close_date": "2027-03-31"},
    )

    def build(method: str, route: str, user: User) -> tuple[str, Any]:
        own = log(activity_api, contact, ADMIN if user.roles == ("viewer",) else user)
        where = route.replace("{contact_id}", contact).replace("{activity_id}", own["id"])
        where = where.replace("{deal_id}", deal["id"])
        body = {"POST": BODIES["note"], "PATCH": {"body": "changed"}}.get(method)
        return where, body

    return build


@pytest.mark.parametrize("route", sorted(ROUTE_RULES), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("role", ROLES)
def test_role_against_route(
    activity_api: Api,
    table: Any,
    request_for: Callable[[str, str, User], tuple[str, Any]],
    role: str,
    route: tuple[str, str],
) -> None:
    method, template_path = route
    user = User("acme", (role,))
    where, body = request_for(method, template_path, user)
    rule, _, status = ROUTE_RULES[route]
    before = table_items(table)

    reply = activity_api.call(method, where, user, body)

    if role in RULE[rule]:
        assert reply.status == status, reply.text
        assert (table_items(table) == before) == (method == "GET")
    else:
        assert_problem(reply, 403)
        assert table_items(table) == before


def test_no_token_claims_is_401(activity_api: Api, contact: str) -> None:
    for method, where in (
        ("GET", f"/contacts/{contact}/timeline"),
        ("GET", "/tasks"),
        ("POST", f"/contacts/{contact}/activities"),
    ):
        assert_problem(activity_api.call(method, where, None, BODIES["note"]), 401)
        assert_problem(activity_api.call(method, where, User(None), BODIES["note"]), 401)


def test_several_groups_add_up(activity_api: Api, contact: str) -> None:
    both = User("acme", ("viewer", "support"))
    logged = log(activity_api, contact, both, body="as support")
    assert logged["created_by"] == both.sub
