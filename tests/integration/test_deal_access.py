"""Who may do what with deals, and what nobody else can see.

- Roles: every role reads deals, pipelines, boards, the forecast and the currencies; sales
  and admins create, move and delete deals; only admins change pipelines and currencies. A
  denied call is a 403 problem that writes nothing.
- Tenants: another tenant's deal or pipeline is a 404 (as a missing one), absent from every
  list, board and forecast, and its cursors are refused.
- Idempotency-Key on POST /deals replays the first answer and makes one deal.
- ETag is the version, If-Match makes a change conditional on it.
- Concurrent moves of one deal: with the same If-Match exactly one wins; without it both
  apply, and the history keeps both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from crm_core.auth import PERMISSIONS, Action, Role
from infra.local.endpoint import DynamoDbIsolation
from tests.support.api import Api, Reply, User, template_routes
from tests.support.bad_inputs import fill
from tests.support.calls import create, get
from tests.support.checks import assert_problem, table_items, tenant_items
from tests.support.lambda_pool import LambdaPool, lambda_pool

ROLES = ("admin", "sales", "marketing", "support", "viewer")
EVERYONE = frozenset(ROLES)
A = User("acme", ("admin",), sub="owner-a")
SALES_A = User("acme", ("sales",), sub="sales-a")

DEAL = {"name": "Big one", "amount": "12500.00", "currency": "USD", "close_date": "2027-03-31"}
STAGES: list[dict[str, Any]] = [
    {"id": "discovery", "name": "Discovery", "probability": 20},
    {"id": "signed", "name": "Signed", "probability": 100, "kind": "won"},
    {"id": "dropped", "name": "Dropped", "probability": 0, "kind": "lost"},
]
PIPELINE = {"name": "Partners", "stages": STAGES}
RATES = {"base": "USD", "rates": {"EUR": "1.08"}}

# The product rule, in a product owner's words.
RULE: dict[str, frozenset[str]] = {
    "read deals, pipelines, boards, the forecast and the currencies": EVERYONE,
    "create, move and delete deals": frozenset({"sales", "admin"}),
    "create, change and delete pipelines; set the currencies": frozenset({"admin"}),
}
READ, DEALS, ADMIN_ONLY = RULE
RULE_ACTIONS = {READ: Action.DEAL_READ, DEALS: Action.DEAL_WRITE, ADMIN_ONLY: Action.PIPELINE_ADMIN}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    route: str  # as in template.yaml
    path: str  # `{name}`: an object of the world
    rule: str
    status: int  # when allowed
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None


# In this order: reads first, then the writes, the deletes last.
CASES = [
    Case("list-deals", "GET", "/deals", "/deals", READ, 200),
    Case("read-deal", "GET", "/deals/{deal_id}", "/deals/{deal}", READ, 200),
    Case("deal-history", "GET", "/deals/{deal_id}/history", "/deals/{deal}/history", READ, 200),
    Case("list-pipelines", "GET", "/pipelines", "/pipelines", READ, 200),
    Case("read-pipeline", "GET", "/pipelines/{pipeline_id}", "/pipelines/{pipeline}", READ, 200),
    Case(
        "board",
        "GET",
        "/pipelines/{pipeline_id}/board",
        "/pipelines/default/board",
        READ,
        200,
    ),
    Case(
        "forecast",
        "GET",
        "/forecast",
        "/forecast",
        READ,
        200,
        query={"from": "2027-01", "to": "2027-12"},
    ),
    Case("currencies", "GET", "/settings/currencies", "/settings/currencies", READ, 200),
    Case("deal-settings", "GET", "/settings/deals", "/settings/deals", READ, 200),
    Case("create-deal", "POST", "/deals", "/deals", DEALS, 201, DEAL),
    Case(
        "move-deal",
        "PATCH",
        "/deals/{deal_id}",
        "/deals/{deal}",
        DEALS,
        200,
        {"stage_id": "proposal"},
    ),
    Case("create-pipeline", "POST", "/pipelines", "/pipelines", ADMIN_ONLY, 201, PIPELINE),
    Case(
        "rename-pipeline",
        "PATCH",
        "/pipelines/{pipeline_id}",
        "/pipelines/{pipeline}",
        ADMIN_ONLY,
        200,
        {"name": "Renamed"},
    ),
    Case(
        "set-currencies",
        "PUT",
        "/settings/currencies",
        "/settings/currencies",
        ADMIN_ONLY,
        200,
        RATES,
    ),
    Case(
        "set-lost-reasons",
        "PUT",
        "/settings/deals",
        "/settings/deals",
        ADMIN_ONLY,
        200,
        {
            "lost_reasons": [
                {"code": "price", "label": "Price"},
                {"code": "other", "label": "Other"},
            ]
        },
    ),
    Case("delete-deal", "DELETE", "/deals/{deal_id}", "/deals/{other_deal}", DEALS, 204),
    Case(
        "delete-pipeline",
        "DELETE",
        "/pipelines/{pipeline_id}",
        "/pipelines/{empty_pipeline}",
        ADMIN_ONLY,
        204,
    ),
]


def may(role: str, action: Action) -> bool:
    return action in PERMISSIONS[Role(role)]


def test_every_route_of_the_deals_function_is_covered() -> None:
    assert {(c.method, c.route) for c in CASES} == set(template_routes("DealsFunction"))


@pytest.mark.parametrize("rule", list(RULE))
def test_the_permission_table_says_the_rule(rule: str) -> None:
    allowed = {role for role in ROLES if may(role, RULE_ACTIONS[rule])}
    assert allowed == RULE[rule]


@pytest.fixture
def world(api: Api, deals_api: Api) -> dict[str, str]:
    """Tenant acme: a contact, a company, the pipeline Partners, an empty pipeline, two
    deals in the default pipeline."""
    contact = create(api, "/contacts", A, {"email": "ann@acme.com"})["id"]
    company = create(api, "/companies", A, {"name": "Acme"})["id"]
    pipeline = create(deals_api, "/pipelines", A, PIPELINE)["id"]
    empty = create(deals_api, "/pipelines", A, {**PIPELINE, "name": "Empty"})["id"]
    deal = create(
        deals_api,
        "/deals",
        SALES_A,
        {**DEAL, "company_id": company, "contacts": [{"contact_id": contact}]},
    )["id"]
    other = create(deals_api, "/deals", SALES_A, {**DEAL, "name": "Other"})["id"]
    partner = create(
        deals_api, "/deals", SALES_A, {**DEAL, "name": "Partner", "pipeline_id": pipeline}
    )["id"]
    return {
        "contact": contact,
        "company": company,
        "pipeline": pipeline,
        "empty_pipeline": empty,
        "deal": deal,
        "other_deal": other,
        "partner_deal": partner,
    }


def _stored() -> list[str]:
    """Every item of the table as a Scan returns it, read from moto in this process (a Scan
    through botocore is slow: two per refused call would make this file slow)."""
    return sorted(DynamoDbIsolation().table_lines("crm-test"))


def _call(deals_api: Api, case: Case, user: User, world: dict[str, str]) -> Reply:
    return deals_api.call(case.method, fill(case.path, world), user, case.body, query=case.query)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_does_what_the_rule_allows_and_nothing_else(
    deals_api: Api, world: dict[str, str], role: str
) -> None:
    user = User("acme", (role,), sub=f"{role}-1")
    wrong: list[str] = []
    for case in CASES:
        allowed = role in RULE[case.rule]
        before = None if allowed else _stored()
        reply = _call(deals_api, case, user, world)
        if allowed:
            if reply.status != case.status:
                wrong.append(f"{case.id}: expected {case.status}, got {reply.status} {reply.text}")
        else:
            try:
                assert_problem(reply, 403)
                assert _stored() == before, "a refused call wrote"
            except AssertionError as error:
                wrong.append(f"{case.id}: {error}")
    assert not wrong, "\n".join(wrong)


# Tenant isolation -------------------------------------------------------------------------


def test_another_tenant_cannot_touch_or_see_a_deal(
    deals_api: Api, table: Any, world: dict[str, str]
) -> None:
    create(deals_api, "/deals", SALES_A, {**DEAL, "name": "Third"})  # a next page for A
    assert deals_api.call("PUT", "/settings/currencies", A, RATES).status == 200
    a_cursor = get(deals_api, "/deals", A, query={"limit": "1"})["next_cursor"]
    assert a_cursor
    a_ids = {world[k] for k in ("deal", "other_deal", "partner_deal")}
    before = tenant_items(table, "acme")
    wrong: list[str] = []

    def expect(what: str, reply: Reply, status: int) -> None:
        try:
            assert_problem(reply, status)
        except AssertionError as error:
            wrong.append(f"{what}: {error}")

    for role in ROLES:
        b = User("globex", (role,), sub=f"globex-{role}")
        writes_deals = may(role, Action.DEAL_WRITE)
        admin = may(role, Action.PIPELINE_ADMIN)
        deal, pipeline = f"/deals/{world['deal']}", f"/pipelines/{world['pipeline']}"
        # By id: exactly what a missing id answers.
        expect(f"{role} read", deals_api.call("GET", deal, b), 404)
        expect(f"{role} history", deals_api.call("GET", f"{deal}/history", b), 404)
        patched = deals_api.call("PATCH", deal, b, {"stage_id": "won"})
        expect(f"{role} patch", patched, 404 if writes_deals else 403)
        moved = deals_api.call("PATCH", deal, b, {"name": "Mine"}, headers={"if-match": '"1"'})
        expect(f"{role} patch if-match", moved, 404 if writes_deals else 403)
        expect(f"{role} delete", deals_api.call("DELETE", deal, b), 404 if writes_deals else 403)
        expect(f"{role} pipeline", deals_api.call("GET", pipeline, b), 404)
        expect(f"{role} board", deals_api.call("GET", f"{pipeline}/board", b), 404)
        expect(
            f"{role} forecast of A's pipeline",
            deals_api.call("GET", "/forecast", b, query={"pipeline_id": world["pipeline"]}),
            404,
        )
        renamed = deals_api.call("PATCH", pipeline, b, {"name": "Mine"})
        expect(f"{role} rename pipeline", renamed, 404 if admin else 403)
        dropped = deals_api.call("DELETE", f"/pipelines/{world['empty_pipeline']}", b)
        expect(f"{role} delete pipeline", dropped, 404 if admin else 403)
        expect(
            f"{role} A's cursor",
            deals_api.call("GET", "/deals", b, query={"cursor": a_cursor}),
            400,
        )
        # Lists, by every filter that names something of A's.
        for query in (
            {},
            {"status": "open"},
            {"stage_id": "qualification"},
            {"owner_id": SALES_A.sub},
            {"company_id": world["company"]},
            {"contact_id": world["contact"]},
            {"pipeline_id": world["pipeline"]},
        ):
            listed = deals_api.call("GET", "/deals", b, query=query)
            if listed.status == 200:
                seen = {d["id"] for d in listed.json["items"]} & a_ids
                if seen:
                    wrong.append(f"{role} list {query} shows {seen}")
            else:
                expect(f"{role} list {query}", listed, 404)
        pipelines = get(deals_api, "/pipelines", b)["items"]
        if [p["id"] for p in pipelines] != ["default"]:
            wrong.append(f"{role} pipelines: {pipelines}")
        board = get(deals_api, "/pipelines/default/board", b)
        if any(s["count"] or s["deals"] or s["sums"] for s in board["stages"]):
            wrong.append(f"{role} board: {board}")
        forecast = get(deals_api, "/forecast", b, query={"from": "2027-01", "to": "2027-12"})
        if forecast["total"]["count"] or forecast["total"]["amount"] != "0.00":
            wrong.append(f"{role} forecast: {forecast['total']}")
        currencies = get(deals_api, "/settings/currencies", b)
        if currencies["rates"] or currencies["version"]:
            wrong.append(f"{role} currencies: {currencies}")
    assert not wrong, "\n".join(wrong)
    assert tenant_items(table, "acme") == before
    assert get(deals_api, f"/deals/{world['deal']}", A)["version"] == 1


def test_a_tenant_sees_its_own_deals_only(deals_api: Api, world: dict[str, str]) -> None:
    """The other side: B's own deal shows in B's lists, board and forecast, beside none of
    A's, and A's lists do not show B's."""
    b = User("globex", ("sales",), sub="globex-sales")
    mine = create(deals_api, "/deals", b, {**DEAL, "amount": "7.00"})
    assert [d["id"] for d in get(deals_api, "/deals", b)["items"]] == [mine["id"]]
    board = get(deals_api, "/pipelines/default/board", b)
    assert [s["count"] for s in board["stages"]] == [1, 0, 0, 0, 0, 0]
    assert board["stages"][0]["sums"] == {"USD": "7.00"}
    forecast = get(deals_api, "/forecast", b, query={"from": "2027-03", "to": "2027-03"})
    assert forecast["total"]["amount"] == "7.00"
    assert mine["id"] not in {d["id"] for d in get(deals_api, "/deals", A)["items"]}
    assert_problem(deals_api.call("GET", f"/deals/{mine['id']}", A), 404)


# Idempotency-Key ----------------------------------------------------------------------------


def _deal_items(table: Any) -> list[dict[str, Any]]:
    return [i for i in table_items(table) if i.get("type", {}).get("S") == "deal"]


def test_an_idempotency_key_replays_the_first_answer_and_makes_one_deal(
    deals_api: Api, table: Any
) -> None:
    key = {"idempotency-key": "deal-key-1"}
    first = deals_api.call("POST", "/deals", SALES_A, DEAL, headers=key)
    second = deals_api.call("POST", "/deals", SALES_A, DEAL, headers=key)

    assert first.status == second.status == 201, (first.text, second.text)
    assert second.json == first.json
    assert second.headers.get("etag") == first.headers.get("etag") == '"1"'
    assert second.headers.get("location") == first.headers.get("location")
    assert [d["id"] for d in get(deals_api, "/deals", SALES_A)["items"]] == [first.json["id"]]
    assert len(_deal_items(table)) == 1
    history = get(deals_api, f"/deals/{first.json['id']}/history", SALES_A)["items"]
    assert [h["action"] for h in history] == ["created"]
    board = get(deals_api, "/pipelines/default/board", SALES_A)
    assert board["stages"][0]["count"] == 1

    other_body = deals_api.call("POST", "/deals", SALES_A, {**DEAL, "name": "Other"}, headers=key)
    assert_problem(other_body, 422)
    assert len(_deal_items(table)) == 1


def test_an_idempotency_key_is_the_tenants_own(deals_api: Api, table: Any) -> None:
    """The same key and body from another tenant is that tenant's own first request."""
    key = {"idempotency-key": "shared-key"}
    mine = create(deals_api, "/deals", SALES_A, DEAL, headers=key)
    theirs = create(deals_api, "/deals", User("globex", ("sales",)), DEAL, headers=key)
    assert theirs["id"] != mine["id"]
    assert len(_deal_items(table)) == 2


# ETag and If-Match ---------------------------------------------------------------------------


def test_the_etag_is_the_version_and_if_match_holds_to_it(deals_api: Api) -> None:
    created = deals_api.call("POST", "/deals", SALES_A, DEAL)
    assert created.status == 201, created.text
    assert created.headers["etag"] == f'"{created.json["version"]}"' == '"1"'
    path = f"/deals/{created.json['id']}"
    read = deals_api.call("GET", path, SALES_A)
    assert read.headers["etag"] == '"1"'

    moved = deals_api.call(
        "PATCH", path, SALES_A, {"stage_id": "proposal"}, headers={"if-match": '"1"'}
    )
    assert moved.status == 200, moved.text
    assert moved.json["version"] == 2
    assert moved.headers["etag"] == '"2"'
    assert deals_api.call("GET", path, SALES_A).headers["etag"] == '"2"'

    stale = deals_api.call(
        "PATCH", path, SALES_A, {"stage_id": "negotiation"}, headers={"if-match": '"1"'}
    )
    assert_problem(stale, 412)
    assert_problem(deals_api.call("DELETE", path, SALES_A, headers={"if-match": '"1"'}), 412)
    assert get(deals_api, path, SALES_A) == moved.json

    deleted = deals_api.call("DELETE", path, SALES_A, headers={"if-match": '"2"'})
    assert deleted.status == 204, deleted.text
    assert_problem(deals_api.call("GET", path, SALES_A), 404)


def test_pipelines_and_currencies_carry_etags_too(deals_api: Api) -> None:
    default = deals_api.call("GET", "/pipelines/default", A)
    assert default.headers["etag"] == f'"{default.json["version"]}"' == '"0"'
    created = deals_api.call("POST", "/pipelines", A, PIPELINE)
    assert created.headers["etag"] == '"1"'
    path = f"/pipelines/{created.json['id']}"
    renamed = deals_api.call("PATCH", path, A, {"name": "Renamed"}, headers={"if-match": '"1"'})
    assert (renamed.status, renamed.headers["etag"]) == (200, '"2"'), renamed.text
    stale = deals_api.call("PATCH", path, A, {"name": "Again"}, headers={"if-match": '"1"'})
    assert_problem(stale, 412)
    assert get(deals_api, path, A)["name"] == "Renamed"

    currencies = deals_api.call("GET", "/settings/currencies", A)
    assert currencies.headers["etag"] == '"0"'
    put = deals_api.call("PUT", "/settings/currencies", A, RATES, headers={"if-match": '"0"'})
    assert (put.status, put.headers["etag"]) == (200, '"1"'), put.text
    again = deals_api.call("PUT", "/settings/currencies", A, RATES, headers={"if-match": '"0"'})
    assert_problem(again, 412)


# Concurrent moves -----------------------------------------------------------------------------

ROUNDS = 3


@pytest.fixture(scope="module")
def pool(deals_module: Any) -> Iterator[LambdaPool]:
    """Warm deals functions, each in its own process (a Lambda execution environment): the
    resolver keeps the request it handles in a class attribute, so threads of one process
    would read each other's requests (tests/support/lambda_pool.py)."""
    with lambda_pool("deals") as workers:
        yield workers


def _moves(deals_api: Api, path: str, headers: dict[str, str] | None) -> list[dict[str, Any]]:
    return [
        deals_api.event("PATCH", path, SALES_A, {"stage_id": stage}, headers=headers)
        for stage in ("proposal", "negotiation")
    ]


def test_moves_with_the_same_if_match_make_exactly_one_change(
    deals_api: Api, pool: LambdaPool
) -> None:
    for _ in range(ROUNDS):
        deal = create(deals_api, "/deals", SALES_A, DEAL)
        path = f"/deals/{deal['id']}"

        replies = pool.together(_moves(deals_api, path, {"if-match": '"1"'}))

        assert sorted(r.status for r in replies) == [200, 412], [r.text for r in replies]
        winner = next(r for r in replies if r.status == 200)
        assert_problem(next(r for r in replies if r.status == 412), 412)
        stored = get(deals_api, path, SALES_A)
        assert stored == winner.json
        assert stored["version"] == 2
        assert winner.headers["etag"] == '"2"'
        history = get(deals_api, f"{path}/history", SALES_A)["items"]
        assert [h["action"] for h in history] == ["updated", "created"]
    board = get(deals_api, "/pipelines/default/board", SALES_A)
    assert sum(s["count"] for s in board["stages"]) == ROUNDS


def test_moves_without_if_match_both_apply_and_the_history_keeps_both(
    deals_api: Api, pool: LambdaPool
) -> None:
    for _ in range(ROUNDS):
        deal = create(deals_api, "/deals", SALES_A, DEAL)
        path = f"/deals/{deal['id']}"

        replies = pool.together(_moves(deals_api, path, None))

        assert [r.status for r in replies] == [200, 200], [r.text for r in replies]
        assert sorted(r.json["version"] for r in replies) == [2, 3]
        stored = get(deals_api, path, SALES_A)
        assert stored["version"] == 3
        last = max(replies, key=lambda r: int(r.json["version"]))
        assert stored == last.json
        history = get(deals_api, f"{path}/history", SALES_A)["items"]
        assert [(h["action"], h["version"]) for h in history] == [
            ("updated", 3),
            ("updated", 2),
            ("created", 1),
        ]
        stages = [
            (c["previous"], c["value"])
            for h in history[:2]
            for c in h["changes"]
            if c["field"] == "stage_id"
        ]
        # Each move is recorded from the stage the deal was really in: a chain.
        assert {v for _, v in stages} == {"proposal", "negotiation"}, stages
        assert stages[1][0] == "qualification"
        assert stages[0][0] == stages[1][1]
        assert stages[0][1] == stored["stage_id"]
    board = get(deals_api, "/pipelines/default/board", SALES_A)
    assert sum(s["count"] for s in board["stages"]) == ROUNDS
