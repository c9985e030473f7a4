"""Another tenant's data is invisible and untouchable: every route, every role.

Tenant A (acme) has a company, contacts in it, tags, an owner. Tenant B (globex) calls
every route of template.yaml with A's ids, as each role. A by-id call answers exactly what
a truly missing id answers (404 when the role may call the route at all, else 403), lists
never show A's data, A's cursors are refused, and none of A's items change.
"""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.auth import MARKETING_CONTACT_FIELDS, PERMISSIONS, Action, Role
from crm_core.ids import new_ulid
from tests.support.api import Api, User, template_routes
from tests.support.calls import create, get, walk
from tests.support.checks import assert_problem, tenant_items

ROLES = ("admin", "sales", "marketing", "support", "viewer")
A = User("acme", ("admin",), sub="owner-a")

# The action each route needs, to tell a 403 (role) from a 404 (not yours) in advance.
ROUTE_ACTIONS = {
    ("POST", "/contacts"): Action.CONTACT_CREATE,
    ("GET", "/contacts"): Action.CONTACT_READ,
    ("GET", "/contacts/{contact_id}"): Action.CONTACT_READ,
    ("PATCH", "/contacts/{contact_id}"): Action.CONTACT_UPDATE,
    ("DELETE", "/contacts/{contact_id}"): Action.CONTACT_DELETE,
    ("POST", "/contacts/{contact_id}/merge"): Action.CONTACT_MERGE,
    ("POST", "/companies"): Action.COMPANY_WRITE,
    ("GET", "/companies"): Action.COMPANY_READ,
    ("GET", "/companies/{company_id}"): Action.COMPANY_READ,
    ("PATCH", "/companies/{company_id}"): Action.COMPANY_WRITE,
    ("DELETE", "/companies/{company_id}"): Action.COMPANY_DELETE,
    ("GET", "/companies/{company_id}/contacts"): Action.CONTACT_READ,
}


def test_every_route_of_the_template_is_covered() -> None:
    assert set(ROUTE_ACTIONS) == set(template_routes("ContactsFunction"))


def may(role: str, action: Action) -> bool:
    return action in PERMISSIONS[Role(role)]


@pytest.fixture
def tenant_a(api: Api) -> dict[str, Any]:
    acme = create(api, "/companies", A, {"name": "Acme", "domain": "acme.com"})
    empty = create(api, "/companies", A, {"name": "Acme Empty", "domain": "empty.acme.com"})
    ada = create(
        api,
        "/contacts",
        A,
        {
            "email": "ada@acme.com",
            "first_name": "Ada",
            "company_id": acme["id"],
            "tags": ["vip"],
            "owner_id": "owner-a",
            "lifecycle_stage": "customer",
        },
    )
    bob = create(
        api,
        "/contacts",
        A,
        {
            "email": "bob@acme.com",
            "company_id": acme["id"],
            "tags": ["vip"],
            "owner_id": "owner-a",
            "lifecycle_stage": "customer",
        },
    )
    cy = create(api, "/contacts", A, {"email": "cy@acme.com", "tags": ["vip"]})
    dee = create(api, "/contacts", A, {"email": "dee@acme.com"})
    # A merged contact leaves a redirect behind: it must be as invisible as the rest.
    merged = api.call("POST", f"/contacts/{cy['id']}/merge", A, {"from_id": dee["id"]})
    assert merged.status == 200, merged.text
    return {
        "company": acme["id"],
        "empty_company": empty["id"],
        "contact": ada["id"],
        "other": bob["id"],
        "survivor": cy["id"],
        "merged": dee["id"],
        "ids": {acme["id"], empty["id"], ada["id"], bob["id"], cy["id"], dee["id"]},
    }


def by_id_calls(a: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(route, method, path with {id}, body) for each by-id route, with the id to try."""
    return [
        ("/contacts/{contact_id}", "GET", a["contact"], None),
        ("/contacts/{contact_id}", "GET", a["merged"], None),
        ("/contacts/{contact_id}", "PATCH", a["contact"], {"first_name": "Mallory"}),
        ("/contacts/{contact_id}", "PATCH", a["contact"], {"tags": ["pwned"]}),
        ("/contacts/{contact_id}", "PATCH", a["merged"], {"email_consent": "subscribed"}),
        ("/contacts/{contact_id}", "DELETE", a["contact"], None),
        ("/contacts/{contact_id}", "DELETE", a["merged"], None),
        ("/contacts/{contact_id}/merge", "POST", a["contact"], {"from_id": a["other"]}),
        ("/companies/{company_id}", "GET", a["company"], None),
        ("/companies/{company_id}", "PATCH", a["company"], {"name": "Mine now"}),
        ("/companies/{company_id}", "DELETE", a["empty_company"], None),
        ("/companies/{company_id}/contacts", "GET", a["company"], None),
    ]


def expected_by_id_status(role: str, method: str, route: str, body: Any) -> int:
    action = ROUTE_ACTIONS[(method, route)]
    if action is Action.CONTACT_UPDATE and body and set(body) <= MARKETING_CONTACT_FIELDS:
        action = Action.CONTACT_UPDATE_MARKETING
    return 404 if may(role, action) else 403


@pytest.mark.parametrize("role", ROLES)
def test_by_id_routes_answer_as_for_a_missing_id(
    api: Api, table: Any, tenant_a: dict[str, Any], role: str
) -> None:
    b = User("globex", (role,))
    # B's own contact, so a merge *into* A's contact has a real source in B's tenant.
    b_contact = create(api, "/contacts", User("globex"), {"email": "b@globex.example"})["id"]
    before = tenant_items(table, "acme")
    routes_tried = set()

    for route, method, a_id, body in by_id_calls(tenant_a):
        routes_tried.add((method, route))
        if body and "from_id" in body:
            body = {"from_id": b_contact}
        param = "{contact_id}" if "{contact_id}" in route else "{company_id}"
        theirs = api.call(method, route.replace(param, a_id), b, body)
        missing = api.call(method, route.replace(param, new_ulid()), b, body)

        status = expected_by_id_status(role, method, route, body)
        assert_problem(theirs, status)
        assert theirs.json == missing.json, (method, route, theirs.text, missing.text)
        assert "location" not in theirs.headers
        assert a_id not in theirs.text

    assert routes_tried == {r for r in template_routes("ContactsFunction") if "{" in r[1]}
    assert tenant_items(table, "acme") == before


LIST_QUERIES = [
    {},
    {"lifecycle_stage": "customer"},
    {"tag": "vip"},
    {"owner_id": "owner-a"},
    {"company_id": "{company}"},
    {"email": "ada@acme.com"},
    {"email": "dee@acme.com"},
]


@pytest.mark.parametrize("role", ROLES)
def test_lists_never_show_another_tenants_data(
    api: Api, table: Any, tenant_a: dict[str, Any], role: str
) -> None:
    b = User("globex", (role,))
    before = tenant_items(table, "acme")

    for raw in LIST_QUERIES:
        query = {k: tenant_a["company"] if v == "{company}" else v for k, v in raw.items()}
        page = get(api, "/contacts", b, query=query)
        assert page == {"items": [], "next_cursor": None}, query
    for query in ({}, {"name_prefix": "acme"}):
        assert get(api, "/companies", b, query=query) == {"items": [], "next_cursor": None}

    assert tenant_items(table, "acme") == before


def test_lists_with_data_of_both_tenants_show_only_the_callers(
    api: Api, tenant_a: dict[str, Any]
) -> None:
    b = User("globex", ("admin",), sub="owner-a")
    b_company = create(api, "/companies", b, {"name": "Acme", "domain": "acme.com"})["id"]
    mine = {
        create(
            api,
            "/contacts",
            b,
            {
                "email": email,
                "company_id": b_company,
                "tags": ["vip"],
                "owner_id": "owner-a",
                "lifecycle_stage": "customer",
            },
        )["id"]
        for email in ("ada@acme.com", "x@globex.example", "y@globex.example")
    }

    for raw in LIST_QUERIES:
        query = {k: b_company if v == "{company}" else v for k, v in raw.items()}
        seen = {c["id"] for page in walk(api, "/contacts", b, query) for c in page}
        assert not seen & tenant_a["ids"], query
        assert seen <= mine, query
    seen = {c["id"] for page in walk(api, f"/companies/{b_company}/contacts", b) for c in page}
    assert seen == mine
    companies = {c["id"] for page in walk(api, "/companies", b) for c in page}
    assert companies == {b_company}


def test_a_cursor_of_another_tenant_is_400(api: Api, table: Any, tenant_a: dict[str, Any]) -> None:
    b = User("globex", ("admin",), sub="owner-a")
    b_company = create(api, "/companies", b, {"name": "Globex"})["id"]
    create(api, "/companies", b, {"name": "Globex 2"})
    for email in ("x@globex.example", "y@globex.example"):
        create(
            api,
            "/contacts",
            b,
            {
                "email": email,
                "company_id": b_company,
                "tags": ["vip"],
                "owner_id": "owner-a",
                "lifecycle_stage": "customer",
            },
        )
    create(api, "/companies", A, {"name": "Acme 3"})
    lists = [
        ("/contacts", {}, "/contacts"),
        ("/contacts", {"lifecycle_stage": "customer"}, "/contacts"),
        ("/contacts", {"tag": "vip"}, "/contacts"),
        ("/contacts", {"owner_id": "owner-a"}, "/contacts"),
        ("/companies", {}, "/companies"),
        (f"/companies/{tenant_a['company']}/contacts", {}, f"/companies/{b_company}/contacts"),
    ]
    for a_path, query, b_path in lists:
        page = get(api, a_path, A, query={**query, "limit": "1"})
        assert page["next_cursor"], a_path
        before = tenant_items(table, "acme")

        reply = api.call("GET", b_path, b, query={**query, "cursor": page["next_cursor"]})

        assert_problem(reply, 400)
        assert tenant_items(table, "acme") == before


@pytest.mark.parametrize("role", ROLES)
def test_creating_with_another_tenants_email_or_domain(
    api: Api, table: Any, tenant_a: dict[str, Any], role: str
) -> None:
    b = User("globex", (role,))
    before = tenant_items(table, "acme")

    contact = api.call("POST", "/contacts", b, {"email": "ADA@acme.com"})
    company = api.call("POST", "/companies", b, {"name": "Acme", "domain": "acme.com"})

    if may(role, Action.CONTACT_CREATE):
        assert contact.status == 201, contact.text
        assert contact.json["email"] == "ada@acme.com"
        assert contact.json["id"] != tenant_a["contact"]
        found = get(api, "/contacts", b, query={"email": "ada@acme.com"})["items"]
        assert [c["id"] for c in found] == [contact.json["id"]]
    else:
        assert_problem(contact, 403)
    if may(role, Action.COMPANY_WRITE):
        assert company.status == 201, company.text
    else:
        assert_problem(company, 403)
    assert tenant_items(table, "acme") == before
    assert (
        get(api, "/contacts", A, query={"email": "ada@acme.com"})["items"][0]["id"]
        == (tenant_a["contact"])
    )


def test_another_tenants_company_cannot_be_joined_or_merged_from(
    api: Api, table: Any, tenant_a: dict[str, Any]
) -> None:
    b = User("globex", ("admin",))
    b_contact = create(api, "/contacts", b, {"email": "b@globex.example"})["id"]
    before = tenant_items(table, "acme")

    joined = api.call(
        "POST", "/contacts", b, {"email": "c@globex.example", "company_id": tenant_a["company"]}
    )
    moved = api.call("PATCH", f"/contacts/{b_contact}", b, {"company_id": tenant_a["company"]})
    merged = api.call("POST", f"/contacts/{b_contact}/merge", b, {"from_id": tenant_a["contact"]})

    assert_problem(joined, 422, field="company_id")
    assert_problem(moved, 422, field="company_id")
    assert_problem(merged, 422, field="from_id")
    unknown = api.call("POST", f"/contacts/{b_contact}/merge", b, {"from_id": new_ulid()})
    assert merged.json == unknown.json
    assert tenant_items(table, "acme") == before
    assert get(api, f"/contacts/{b_contact}", b)["version"] == 1
