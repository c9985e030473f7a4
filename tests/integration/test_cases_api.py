"""The cases function over its HTTP routes: cases, replies, the conversation, queues and
the SLA policy; who may do what; what another tenant cannot see; bad input refused with a
problem that writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, User
from tests.support.calls import create, get, ids, patch, walk
from tests.support.checks import assert_problem, tenant_items

ADMIN = User("acme", ("admin",), sub="admin-a")
AGENT = User("acme", ("support",), sub="agent-a")
SALES = User("acme", ("sales",), sub="sales-a")
VIEWER = User("acme", ("viewer",), sub="viewer-a")
MARKETING = User("acme", ("marketing",), sub="marketing-a")
OTHER = User("globex", ("admin",), sub="admin-g")
HOURS = {
    "timezone": "Europe/Paris",
    "week": {day: [["09:00", "12:30"], ["13:30", "18:00"]] for day in ("mon", "tue", "wed")},
    "holidays": ["2026-12-25"],
}
TARGETS = {"urgent": {"first_response_minutes": 30, "resolution_minutes": 240}}


def person(api: Api) -> str:
    return str(create(api, "/contacts", ADMIN, {"email": "ada@example.com"})["id"])


def new_case(cases_api: Api, user: User = AGENT, **fields: Any) -> dict[str, Any]:
    return create(cases_api, "/cases", user, {"subject": "Printer on fire", **fields})


def test_a_case_is_opened_read_changed_and_answered(api: Api, cases_api: Api) -> None:
    contact = person(api)
    reply = cases_api.call(
        "POST", "/cases", AGENT, {"subject": "VAT number wrong", "contact_id": contact}
    )
    assert reply.status == 201, reply.text
    case = reply.json
    assert reply.headers["location"] == f"/cases/{case['id']}"
    assert reply.headers["etag"] == '"1"'
    assert (case["status"], case["priority"], case["channel"]) == ("new", "normal", "api")
    assert set(case["sla"]) == {"first_response", "next_response", "resolution"}
    assert get(cases_api, f"/cases/{case['id']}", VIEWER) == case

    changed = patch(
        cases_api, f"/cases/{case['id']}", AGENT, {"priority": "urgent", "type": "incident"}
    )
    assert (changed["priority"], changed["type"], changed["version"]) == ("urgent", "incident", 2)

    note = create(
        cases_api, f"/cases/{case['id']}/replies", AGENT, {"body": "Checking", "public": False}
    )
    answer = create(
        cases_api,
        f"/cases/{case['id']}/replies",
        AGENT,
        {"body": "Fixed from today's invoices on.", "public": True, "status": "solved"},
    )
    assert (note["kind"], answer["kind"]) == ("note", "reply")
    solved = get(cases_api, f"/cases/{case['id']}", AGENT)
    assert solved["status"] == "solved"
    assert solved["first_responded_at"] == answer["created_at"]
    assert solved["sla"]["resolution"]["met_at"] == answer["created_at"]
    conversation = get(cases_api, f"/cases/{case['id']}/conversation", VIEWER)
    assert ids(conversation["items"]) == [note["id"], answer["id"]]


def test_if_match_makes_a_change_conditional(cases_api: Api) -> None:
    case = new_case(cases_api)
    stale = cases_api.call(
        "PATCH", f"/cases/{case['id']}", AGENT, {"status": "open"}, headers={"If-Match": '"7"'}
    )
    assert_problem(stale, 412)
    fresh = cases_api.call(
        "PATCH", f"/cases/{case['id']}", AGENT, {"status": "open"}, headers={"If-Match": '"1"'}
    )
    assert fresh.status == 200, fresh.text


def test_moves_a_help_desk_refuses_are_422_and_change_nothing(cases_api: Api) -> None:
    case = new_case(cases_api)
    refused = cases_api.call("PATCH", f"/cases/{case['id']}", AGENT, {"status": "closed"})
    body = assert_problem(refused, 422)
    assert "cannot move from new to closed" in body["detail"]
    assert get(cases_api, f"/cases/{case['id']}", AGENT)["version"] == 1
    no_contact = cases_api.call(
        "POST", f"/cases/{case['id']}/replies", AGENT, {"body": "Hi", "public": True}
    )
    assert_problem(no_contact, 422)


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "allowed"),
    [
        (VIEWER, "POST", "/cases", {"subject": "x"}, False),
        (SALES, "POST", "/cases", {"subject": "x"}, False),
        (MARKETING, "POST", "/cases", {"subject": "x"}, False),
        (AGENT, "POST", "/cases", {"subject": "x"}, True),
        (AGENT, "POST", "/queues", {"name": "Support"}, False),
        (ADMIN, "POST", "/queues", {"name": "Support"}, True),
        (AGENT, "PUT", "/settings/sla", {"business_hours": HOURS, "targets": TARGETS}, False),
        (ADMIN, "PUT", "/settings/sla", {"business_hours": HOURS, "targets": TARGETS}, True),
        (SALES, "GET", "/cases", None, True),
        (VIEWER, "GET", "/queues", None, True),
        (MARKETING, "GET", "/settings/sla", None, True),
    ],
)
def test_support_and_admins_work_cases_and_admins_set_them_up(
    cases_api: Api, user: User, method: str, path: str, body: Any, allowed: bool
) -> None:
    reply = cases_api.call(method, path, user, body)
    if allowed:
        assert reply.status in (200, 201), reply.text
    else:
        assert_problem(reply, 403)


def test_another_tenants_case_and_queue_are_not_found(cases_api: Api, table: Any) -> None:
    case = new_case(cases_api)
    queue = create(cases_api, "/queues", ADMIN, {"name": "Support"})
    for method, path, body in (
        ("GET", f"/cases/{case['id']}", None),
        ("PATCH", f"/cases/{case['id']}", {"status": "open"}),
        ("POST", f"/cases/{case['id']}/replies", {"body": "x", "public": False}),
        ("GET", f"/cases/{case['id']}/conversation", None),
        ("GET", f"/queues/{queue['id']}", None),
        ("PATCH", f"/queues/{queue['id']}", {"name": "Mine"}),
        ("DELETE", f"/queues/{queue['id']}", None),
    ):
        assert_problem(cases_api.call(method, path, OTHER, body), 404)
    assert get(cases_api, "/cases", OTHER)["items"] == []
    assert get(cases_api, "/queues", OTHER)["items"] == []
    refused = cases_api.call("POST", "/cases", OTHER, {"subject": "x", "queue_id": queue["id"]})
    assert_problem(refused, 422, field="queue_id")
    assert tenant_items(table, "globex") == []


def test_a_case_names_only_the_tenants_own_contact_and_company(
    api: Api, cases_api: Api, table: Any
) -> None:
    contact = person(api)
    company = create(api, "/companies", ADMIN, {"name": "Acme"})["id"]
    for field, value in (("contact_id", contact), ("company_id", company)):
        refused = cases_api.call("POST", "/cases", OTHER, {"subject": "x", field: value})
        assert_problem(refused, 422, field=field)
    assert tenant_items(table, "globex") == []
    case = new_case(cases_api, contact_id=contact, company_id=company)
    moved = cases_api.call("PATCH", f"/cases/{case['id']}", AGENT, {"contact_id": "0" * 26})
    assert_problem(moved, 422, field="contact_id")


def test_a_queue_assigns_in_turn_and_is_not_deleted_while_it_has_work(cases_api: Api) -> None:
    queue = create(
        cases_api,
        "/queues",
        ADMIN,
        {"name": "Support", "members": ["ann", "bob"], "assignment": "round_robin"},
    )
    cases = [new_case(cases_api, queue_id=queue["id"]) for _ in range(3)]
    assert [c["assignee_id"] for c in cases] == ["ann", "bob", "ann"]
    shown = get(cases_api, f"/queues/{queue['id']}", VIEWER)
    assert (shown["open_cases"], shown["open_by_member"]) == (3, {"ann": 2, "bob": 1})
    assert ids(get(cases_api, "/cases", VIEWER, query={"assignee_id": "ann"})["items"]) == [
        cases[2]["id"],
        cases[0]["id"],
    ]
    busy = cases_api.call("DELETE", f"/queues/{queue['id']}", ADMIN)
    assert_problem(busy, 409)
    for case in cases:
        patch(cases_api, f"/cases/{case['id']}", AGENT, {"status": "solved"})
    assert cases_api.call("DELETE", f"/queues/{queue['id']}", ADMIN).status == 204


def test_lists_take_one_filter_and_page_through(cases_api: Api) -> None:
    made = [new_case(cases_api, priority="high") for _ in range(5)]
    pages = walk(cases_api, "/cases", VIEWER, {"priority": "high"})
    assert sorted(i for page in pages for i in ids(page)) == sorted(c["id"] for c in made)
    two = cases_api.call("GET", "/cases", VIEWER, query={"priority": "high", "status": "new"})
    assert_problem(two, 400)
    bad = cases_api.call("GET", "/cases", VIEWER, query={"sla": "late"})
    assert_problem(bad, 422)


def test_the_sla_policy_is_read_set_and_checked(cases_api: Api) -> None:
    default = get(cases_api, "/settings/sla", VIEWER)
    assert default["version"] == 0
    assert default["business_hours"]["timezone"] == "UTC"
    saved = cases_api.call(
        "PUT", "/settings/sla", ADMIN, {"business_hours": HOURS, "targets": TARGETS}
    )
    assert saved.status == 200, saved.text
    assert saved.json["targets"]["urgent"]["first_response_minutes"] == 30
    assert saved.json["targets"]["low"] == {
        "first_response_minutes": None,
        "next_response_minutes": None,
        "resolution_minutes": None,
    }
    for hours, field in (
        ({**HOURS, "timezone": "Mars/Olympus"}, "timezone"),
        ({**HOURS, "week": {"mon": [["18:00", "09:00"]]}}, "week"),
        ({**HOURS, "week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "week"),
        ({**HOURS, "week": {"mon": [["09:00", "24:01"]]}}, "week"),
        ({**HOURS, "week": {}}, "week"),
        ({**HOURS, "holidays": ["2026-02-30"]}, "holidays"),
    ):
        refused = cases_api.call(
            "PUT", "/settings/sla", ADMIN, {"business_hours": hours, "targets": TARGETS}
        )
        assert_problem(refused, 422, field=field)
    assert get(cases_api, "/settings/sla", VIEWER)["version"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 251}, "subject"),
        ({"subject": "x", "priority": "critical"}, "priority"),
        ({"subject": "x", "status": "solved"}, "status"),
        ({"subject": "x", "contact_id": "not-a-ulid"}, "contact_id"),
        ({"subject": "x", "sla": {}}, "sla"),
        ({"subject": "x", "tags": ["a"] * 21}, "tags"),
    ],
)
def test_bad_cases_are_refused_and_write_nothing(
    cases_api: Api, table: Any, body: dict[str, Any], field: str
) -> None:
    assert_problem(cases_api.call("POST", "/cases", AGENT, body), 422, field=field)
    assert tenant_items(table, "acme") == []


def test_a_queue_changes_its_members_policy_and_mailbox(cases_api: Api) -> None:
    support = create(cases_api, "/queues", ADMIN, {"name": "Support", "mailbox": "help"})
    billing = create(cases_api, "/queues", ADMIN, {"name": "Billing", "mailbox": "billing"})
    assert (support["mailbox"], support["assignment"]) == ("help", "manual")
    taken = cases_api.call("PATCH", f"/queues/{billing['id']}", ADMIN, {"mailbox": "help"})
    assert_problem(taken, 409)
    moved = patch(
        cases_api,
        f"/queues/{support['id']}",
        ADMIN,
        {"mailbox": "support", "members": ["ann", "bob", "ann"], "assignment": "least_open"},
    )
    assert (moved["mailbox"], moved["members"], moved["version"]) == (
        "support",
        ["ann", "bob"],
        2,
    )
    # The mailbox it left is free again; the one it took is not.
    patch(cases_api, f"/queues/{billing['id']}", ADMIN, {"mailbox": "help"})
    assert_problem(
        cases_api.call("PATCH", f"/queues/{billing['id']}", ADMIN, {"mailbox": "support"}), 409
    )
    first = new_case(cases_api, queue_id=support["id"])
    second = new_case(cases_api, queue_id=support["id"])
    assert {first["assignee_id"], second["assignee_id"]} == {"ann", "bob"}
    names = [q["name"] for q in get(cases_api, "/queues", VIEWER)["items"]]
    assert names == ["Billing", "Support"]  # by name


def test_moving_a_case_between_queues_moves_its_counts(cases_api: Api) -> None:
    one = create(
        cases_api,
        "/queues",
        ADMIN,
        {"name": "One", "members": ["ann"], "assignment": "round_robin"},
    )
    two = create(
        cases_api,
        "/queues",
        ADMIN,
        {"name": "Two", "members": ["bob"], "assignment": "round_robin"},
    )
    case = new_case(cases_api, queue_id=one["id"])
    assert case["assignee_id"] == "ann"
    moved = patch(
        cases_api, f"/cases/{case['id']}", AGENT, {"queue_id": two["id"], "assignee_id": None}
    )
    assert moved["assignee_id"] == "bob"  # the new queue assigned it
    counts = {
        q["name"]: (q["open_cases"], q["open_by_member"])
        for q in get(cases_api, "/queues", VIEWER)["items"]
    }
    assert counts == {"One": (0, {}), "Two": (1, {"bob": 1})}
