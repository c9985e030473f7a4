"""Who may do what: every role against every route.

The product rule is written out below, in words a product owner would check. The test
fails if crm_core.auth.PERMISSIONS drifts from it, and then calls every route as every
role: an allowed call succeeds, a denied one is a 403 problem that writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from crm_core.auth import MARKETING_CONTACT_FIELDS, PERMISSIONS, Action, Role
from tests.support.api import Api, User, template_routes
from tests.support.calls import create
from tests.support.checks import assert_problem, table_items

ROLES = ("admin", "sales", "marketing", "support", "viewer")
EVERYONE = frozenset(ROLES)

# The product rule: viewer and support read; sales and admin write; marketing reads and may
# change only a contact's tags and email consent; only admin deletes and merges.
RULE: dict[str, frozenset[str]] = {
    "read": EVERYONE,
    "create contact": frozenset({"sales", "admin"}),
    "change any contact field": frozenset({"sales", "admin"}),
    "change contact tags and email consent": frozenset({"marketing", "sales", "admin"}),
    "delete contact": frozenset({"admin"}),
    "merge contacts": frozenset({"admin"}),
    "create or change company": frozenset({"sales", "admin"}),
    "delete company": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    route: str  # as in template.yaml
    rule: str
    actions: tuple[Action, ...]  # what the permission table must grant
    status: int  # when allowed
    body: dict[str, Any] | None = None


def _patch(id_: str, body: dict[str, Any]) -> Case:
    marketing_only = set(body) <= MARKETING_CONTACT_FIELDS
    return Case(
        id_,
        "PATCH",
        "/contacts/{contact_id}",
        "change contact tags and email consent" if marketing_only else "change any contact field",
        (Action.CONTACT_UPDATE_MARKETING,) if marketing_only else (Action.CONTACT_UPDATE,),
        200,
        body,
    )


CASES = [
    Case(
        "create-contact",
        "POST",
        "/contacts",
        "create contact",
        (Action.CONTACT_CREATE,),
        201,
        {"email": "new@example.com"},
    ),
    Case("list-contacts", "GET", "/contacts", "read", (Action.CONTACT_READ,), 200),
    Case("read-contact", "GET", "/contacts/{contact_id}", "read", (Action.CONTACT_READ,), 200),
    _patch("patch-contact-tags", {"tags": ["newsletter"]}),
    _patch("patch-contact-consent", {"email_consent": "unsubscribed"}),
    _patch("patch-contact-tags-and-consent", {"tags": ["a"], "email_consent": "subscribed"}),
    _patch("patch-contact-name", {"first_name": "Ada"}),
    _patch("patch-contact-stage", {"lifecycle_stage": "mql"}),
    _patch("patch-contact-tags-and-title", {"tags": ["a"], "title": "CTO"}),
    _patch("patch-contact-owner", {"owner_id": "someone-else"}),
    Case(
        "delete-contact",
        "DELETE",
        "/contacts/{contact_id}",
        "delete contact",
        (Action.CONTACT_DELETE,),
        204,
    ),
    Case(
        "merge-contacts",
        "POST",
        "/contacts/{contact_id}/merge",
        "merge contacts",
        (Action.CONTACT_MERGE,),
        200,
        {"from_id": "{other}"},
    ),
    Case(
        "create-company",
        "POST",
        "/companies",
        "create or change company",
        (Action.COMPANY_WRITE,),
        201,
        {"name": "Initech"},
    ),
    Case("list-companies", "GET", "/companies", "read", (Action.COMPANY_READ,), 200),
    Case("read-company", "GET", "/companies/{company_id}", "read", (Action.COMPANY_READ,), 200),
    Case(
        "patch-company",
        "PATCH",
        "/companies/{company_id}",
        "create or change company",
        (Action.COMPANY_WRITE,),
        200,
        {"industry": "Paper"},
    ),
    Case(
        "patch-company-tags",
        "PATCH",
        "/companies/{company_id}",
        "create or change company",
        (Action.COMPANY_WRITE,),
        200,
        {"tags": ["target"]},
    ),
    Case(
        "delete-company",
        "DELETE",
        "/companies/{company_id}",
        "delete company",
        (Action.COMPANY_DELETE,),
        204,
    ),
    Case(
        "list-company-contacts",
        "GET",
        "/companies/{company_id}/contacts",
        "read",
        (Action.CONTACT_READ,),
        200,
    ),
]


def table_allows(role: str, case: Case) -> bool:
    """What crm_core.auth.PERMISSIONS grants, read independently of the routes' code."""
    granted = PERMISSIONS[Role(role)]
    return all(action in granted for action in case.actions)


def test_every_route_of_the_template_has_a_case() -> None:
    assert {(c.method, c.route) for c in CASES} == set(template_routes("ContactsFunction"))


def test_every_role_is_known_to_the_permission_table() -> None:
    assert set(PERMISSIONS) == {Role(r) for r in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_the_permission_table_follows_the_product_rule(role: str) -> None:
    drift = [
        f"{case.id}: rule says {role in RULE[case.rule]}, table says {table_allows(role, case)}"
        for case in CASES
        if (role in RULE[case.rule]) != table_allows(role, case)
    ]
    assert not drift, drift


@pytest.fixture
def world(api: Api) -> Callable[[Case], tuple[str, Any]]:
    """A company with a contact, another contact, an empty company; a request per case."""
    admin = User("acme", ("admin",))
    busy = create(api, "/companies", admin, {"name": "Acme"})["id"]
    empty = create(api, "/companies", admin, {"name": "Empty Co"})["id"]
    contact = create(
        api, "/contacts", admin, {"email": "ada@example.com", "company_id": busy, "tags": ["vip"]}
    )["id"]
    other = create(api, "/contacts", admin, {"email": "bob@example.com"})["id"]

    def request(case: Case) -> tuple[str, Any]:
        company = empty if case.method == "DELETE" else busy
        path = case.route.replace("{contact_id}", contact).replace("{company_id}", company)
        body = case.body
        if body and body.get("from_id") == "{other}":
            body = {"from_id": other}
        return path, body

    return request


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("role", ROLES)
def test_role_against_route(
    api: Api, table: Any, world: Callable[[Case], tuple[str, Any]], role: str, case: Case
) -> None:
    path, body = world(case)
    before = table_items(table)

    reply = api.call(case.method, path, User("acme", (role,)), body)

    if role in RULE[case.rule]:
        assert reply.status == case.status, reply.text
        if case.method == "GET":
            assert table_items(table) == before
        else:
            assert table_items(table) != before
    else:
        assert_problem(reply, 403)
        assert table_items(table) == before


def test_several_groups_add_up(api: Api, world: Callable[[Case], tuple[str, Any]]) -> None:
    both = User("acme", ("viewer", "marketing"))
    path, _ = world(CASES[3])
    assert api.call("PATCH", path, both, {"tags": ["x"]}).status == 200
    assert_problem(api.call("PATCH", path, both, {"title": "x"}), 403)
    assert (
        api.call(
            "POST", "/contacts", User("acme", ("viewer", "sales")), {"email": "new@example.com"}
        ).status
        == 201
    )
