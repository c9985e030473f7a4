"""Bad input to the deals function gets a clear 4xx problem+json, and changes nothing.

One table, as in test_bad_inputs.py: each row is a request a client could send to the deals
routes (deals, pipelines, the board, the forecast, the currencies) and the status it must
get. Every row also proves that nothing was stored or changed: the table holds exactly the
same items after the call as before it, and the deal (its version) and the default
pipeline's board read through the API the same as before any row ran.

The world is built once for the module, so that a hundred and fifty rows stay fast: every
row must leave it as it found it, which is what each row checks; one that does not (a
product bug, which that row reports) is undone after it, so the rows after it still meet
the world they expect.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from crm_core.ids import new_ulid
from infra.local.endpoint import DynamoDbIsolation
from tests.support.api import Api, User, template_routes
from tests.support.bad_inputs import Row, b64, fill, next_cursor
from tests.support.calls import create, get, patch
from tests.support.checks import assert_problem

ADMIN = User("acme", ("admin",), sub="admin-1")
SALES = User("acme", ("sales",), sub="sales-1")
OTHER = User("other", ("admin",), sub="other-1")
USERS: dict[str, User | None] = {"admin": ADMIN, "sales": SALES, "other": OTHER}

DEAL = {"name": "Big one", "amount": "12500.00", "currency": "USD", "close_date": "2027-03-31"}
LOST = {"stage_id": "lost"}
DEALS = "/deals"
ONE = "/deals/{deal}"
PIPELINES = "/pipelines"
CURRENCIES = "/settings/currencies"
FORECAST = "/forecast"

# A second pipeline: none of its stage ids is one of the default pipeline's.
PARTNER_STAGES: list[dict[str, Any]] = [
    {"id": "discovery", "name": "Discovery", "probability": 20},
    {"id": "demo", "name": "Demo", "probability": 60},
    {"id": "signed", "name": "Signed", "probability": 100, "kind": "won"},
    {"id": "dropped", "name": "Dropped", "probability": 0, "kind": "lost"},
]
# The default pipeline's stages, as every tenant has them.
DEFAULT_STAGES: list[dict[str, Any]] = [
    {"id": "qualification", "name": "Qualification", "probability": 10},
    {"id": "needs-analysis", "name": "Needs analysis", "probability": 20},
    {"id": "proposal", "name": "Proposal", "probability": 50},
    {"id": "negotiation", "name": "Negotiation", "probability": 80},
    {"id": "won", "name": "Closed won", "probability": 100, "kind": "won"},
    {"id": "lost", "name": "Closed lost", "probability": 0, "kind": "lost"},
]
OPEN_STAGE = {"id": "open-1", "name": "Open 1", "probability": 10}
WON_STAGE = {"id": "won", "name": "Won", "probability": 100, "kind": "won"}
LOST_STAGE = {"id": "lost", "name": "Lost", "probability": 0, "kind": "lost"}


def _deal(id_: str, expected: int, loc: str | None = None, /, **fields: Any) -> Row:
    """POST /deals with the valid body changed by `fields` (None: the field left out)."""
    body = {k: v for k, v in {**DEAL, **fields}.items() if v is not None}
    return Row(id_, "POST", DEALS, expected, body, loc=loc)


def _patch(id_: str, body: Any, status: int = 422, loc: str | None = None, **kw: Any) -> Row:
    return Row(id_, "PATCH", ONE, status, body, loc=loc, **kw)


def _pipeline(id_: str, stages: list[dict[str, Any]], loc: str | None = "stages") -> Row:
    return Row(id_, "POST", PIPELINES, 422, {"name": "Broken", "stages": stages}, loc=loc)


def _stage(**fields: Any) -> list[dict[str, Any]]:
    """Valid stages, with the open stage changed by `fields`."""
    return [{**OPEN_STAGE, **fields}, WON_STAGE, LOST_STAGE]


def _won(**fields: Any) -> list[dict[str, Any]]:
    return [OPEN_STAGE, {**WON_STAGE, **fields}, LOST_STAGE]


def _rates(id_: str, body: Any, loc: str | None = None) -> Row:
    return Row(id_, "PUT", CURRENCIES, 422, body, loc=loc)


def _forecast(id_: str, expected: int, loc: str | None = None, /, **query: str) -> Row:
    return Row(id_, "GET", FORECAST, expected, query=query, loc=loc)


ROWS: list[Row] = [
    # The body is not a JSON object ----------------------------------------------------------
    Row("malformed-json", "POST", DEALS, 400, raw='{"name": "Big one",'),
    Row("json-array", "POST", DEALS, 422, raw=json.dumps([DEAL])),
    Row("malformed-json-patch", "PATCH", ONE, 400, raw="{name: x}"),
    # Amounts: decimal strings, never JSON numbers, with the currency's minor digits -------
    _deal("amount-float", 422, "amount", amount=12500.0),
    _deal("amount-integer-number", 422, "amount", amount=12500),
    _deal("amount-eur-3-decimals", 422, "amount", amount="1.005", currency="EUR"),
    _deal("amount-jpy-1-decimal", 422, "amount", amount="100.5", currency="JPY"),
    _deal("amount-kwd-4-decimals", 422, "amount", amount="1.0005", currency="KWD"),
    _deal("amount-negative", 422, "amount", amount="-100.00"),
    _deal("amount-exponent", 422, "amount", amount="1e3"),
    _deal("amount-leading-space", 422, "amount", amount=" 100.00"),
    _deal("amount-trailing-space", 422, "amount", amount="100.00 "),
    _deal("amount-plus-sign", 422, "amount", amount="+100.00"),
    _deal("amount-thousands-separator", 422, "amount", amount="12,500.00"),
    _deal("amount-16-whole-digits", 422, "amount", amount="1234567890123456"),
    _deal("amount-empty", 422, "amount", amount=""),
    _deal("amount-missing", 422, "amount", amount=None),
    # Currencies --------------------------------------------------------------------------------
    _deal("currency-unknown", 422, "currency", currency="XYZ"),
    _deal("currency-lowercase", 422, "currency", currency="usd"),
    _deal("currency-number", 422, "currency", currency=840),
    _deal("currency-fund-code", 422, "currency", currency="XAU"),
    _deal("currency-missing", 422, "currency", currency=None),
    # No rate from EUR to the base (USD until the tenant sets its currencies).
    _deal("currency-without-rate", 422, "currency", currency="EUR"),
    # Close dates: a calendar date, not a moment -------------------------------------------------
    _deal("close-date-datetime", 422, "close_date", close_date="2027-03-31T00:00:00Z"),
    _deal("close-date-february-30", 422, "close_date", close_date="2027-02-30"),
    _deal("close-date-us-format", 422, "close_date", close_date="03/31/2027"),
    _deal("close-date-missing", 422, "close_date", close_date=None),
    # Pipelines and stages ---------------------------------------------------------------------
    _deal("stage-of-another-pipeline", 422, "stage_id", stage_id="demo"),
    _deal("stage-unknown", 422, "stage_id", stage_id="nowhere"),
    _deal("stage-upper-case", 422, "stage_id", stage_id="Proposal"),
    # A pipeline named in the body that the tenant does not have: the body is wrong (422, as
    # a contact's unknown company_id), the route /deals exists.
    _deal("pipeline-unknown", 422, "pipeline_id", pipeline_id="{missing}"),
    _deal("pipeline-of-another-tenant", 422, "pipeline_id", pipeline_id="{other_pipeline}"),
    _deal("pipeline-not-ulid", 422, "pipeline_id", pipeline_id="sales"),
    # Lost deals and their reasons --------------------------------------------------------------
    _deal("lost-without-reason", 422, "lost_reason", **LOST),
    _deal(
        "lost-reason-other-without-note",
        422,
        "lost_reason",
        **LOST,
        lost_reason={"reason": "other"},
    ),
    _deal("lost-reason-unknown", 422, "lost_reason", **LOST, lost_reason={"reason": "weather"}),
    _deal("lost-reason-string", 422, "lost_reason", **LOST, lost_reason="price"),
    # A lost reason on a deal that is not lost would be dropped without a word: refused.
    _deal("lost-reason-on-an-open-deal", 422, "lost_reason", lost_reason={"reason": "price"}),
    # Contacts and the company ------------------------------------------------------------------
    _deal(
        "contact-of-another-tenant",
        422,
        "contacts",
        contacts=[{"contact_id": "{other_contact}"}],
    ),
    _deal("company-of-another-tenant", 422, "company_id", company_id="{other_company}"),
    _deal("contact-unknown", 422, "contacts", contacts=[{"contact_id": "{missing}"}]),
    _deal("company-unknown", 422, "company_id", company_id="{missing}"),
    _deal(
        "contacts-21",
        422,
        "contacts",
        contacts=[{"contact_id": new_ulid()} for _ in range(21)],
    ),
    _deal(
        "contacts-duplicated",
        422,
        "contacts",
        contacts=[{"contact_id": "{contact}"}, {"contact_id": "{contact}", "role": "buyer"}],
    ),
    _deal(
        "contacts-two-primaries",
        422,
        "contacts",
        contacts=[
            {"contact_id": "{contact}", "primary": True},
            {"contact_id": "{contact2}", "primary": True},
        ],
    ),
    _deal(
        "contact-primary-string",
        422,
        "contacts",
        contacts=[{"contact_id": "{contact}", "primary": "yes"}],
    ),
    _deal("contact-id-not-ulid", 422, "contacts", contacts=[{"contact_id": "ann"}]),
    # Unknown and server-owned fields ------------------------------------------------------------
    _deal("unknown-field", 422, "probability", probability=50),
    _deal("server-owned-status", 422, "status", status="won"),
    _deal("server-owned-version", 422, "version", version=7),
    _deal("server-owned-id", 422, "id", id="01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    _deal("name-blank", 422, "name", name="   "),
    _deal("name-missing", 422, "name", name=None),
    # PATCH a deal -------------------------------------------------------------------------------
    _patch("patch-empty", {}),
    _patch("patch-name-null", {"name": None}),
    _patch("patch-currency-null", {"currency": None}),
    _patch("patch-stage-null", {"stage_id": None}),
    _patch("patch-unknown-field", {"colour": "red"}, loc="colour"),
    _patch("patch-server-owned-version", {"version": 9}, loc="version"),
    _patch("patch-to-lost-without-reason", LOST, loc="lost_reason"),
    _patch(
        "patch-to-lost-other-without-note",
        {**LOST, "lost_reason": {"reason": "other"}},
        loc="lost_reason",
    ),
    _patch(
        "patch-to-lost-reason-unknown",
        {**LOST, "lost_reason": {"reason": "weather"}},
        loc="lost_reason",
    ),
    _patch(
        "patch-lost-reason-on-an-open-deal", {"lost_reason": {"reason": "price"}}, loc="lost_reason"
    ),
    _patch("patch-stage-of-another-pipeline", {"stage_id": "demo"}, loc="stage_id"),
    _patch("patch-stage-unknown", {"stage_id": "nowhere"}, loc="stage_id"),
    _patch("patch-pipeline-without-stage", {"pipeline_id": "{pipeline}"}),
    _patch(
        "patch-pipeline-with-default-stage",
        {"pipeline_id": "{pipeline}", "stage_id": "proposal"},
        loc="stage_id",
    ),
    _patch("patch-amount-float", {"amount": 100.5}, loc="amount"),
    _patch("patch-amount-3-decimals", {"amount": "1.005"}, loc="amount"),
    _patch("patch-amount-jpy-decimal", {"currency": "JPY", "amount": "100.5"}, loc="amount"),
    _patch("patch-currency-without-rate", {"currency": "EUR"}, loc="currency"),
    _patch("patch-close-date-invalid", {"close_date": "2027-02-30"}, loc="close_date"),
    _patch("patch-close-date-datetime", {"close_date": "2027-03-31T00:00:00Z"}, loc="close_date"),
    _patch("patch-company-of-another-tenant", {"company_id": "{other_company}"}, loc="company_id"),
    _patch(
        "patch-contacts-of-another-tenant",
        {"contacts": [{"contact_id": "{other_contact}"}]},
        loc="contacts",
    ),
    _patch(
        "patch-contacts-21",
        {"contacts": [{"contact_id": new_ulid()} for _ in range(21)]},
        loc="contacts",
    ),
    # ETags --------------------------------------------------------------------------------------
    _patch("patch-if-match-stale", {"name": "Bigger"}, 412, headers={"if-match": '"9"'}),
    _patch("patch-if-match-malformed", {"name": "Bigger"}, 400, headers={"if-match": "v1"}),
    Row("delete-if-match-stale", "DELETE", ONE, 412, headers={"if-match": '"9"'}),
    # Paths --------------------------------------------------------------------------------------
    Row("get-deal-not-ulid", "GET", "/deals/not-a-ulid", 422, loc="deal_id"),
    Row("get-deal-lowercase-ulid", "GET", "/deals/01arz3ndektsv4rrffq69g5fav", 422, loc="deal_id"),
    Row("get-deal-missing", "GET", "/deals/{missing}", 404),
    Row("get-deal-of-another-tenant", "GET", "/deals/{other_deal}", 404),
    Row("patch-deal-missing", "PATCH", "/deals/{missing}", 404, {"name": "x"}),
    Row("delete-deal-not-ulid", "DELETE", "/deals/big-one", 422, loc="deal_id"),
    Row("history-not-ulid", "GET", "/deals/big-one/history", 422, loc="deal_id"),
    Row("history-missing", "GET", "/deals/{missing}/history", 404),
    # Lists: one filter, cursors -----------------------------------------------------------------
    Row("list-two-filters", "GET", DEALS, 400, query={"owner_id": "sales-1", "status": "open"}),
    Row(
        "list-pipeline-and-owner",
        "GET",
        DEALS,
        400,
        query={"pipeline_id": "{pipeline}", "owner_id": "sales-1"},
    ),
    Row("list-status-unknown", "GET", DEALS, 422, query={"status": "closed"}, loc="status"),
    Row("list-contact-not-ulid", "GET", DEALS, 422, query={"contact_id": "ann"}, loc="contact_id"),
    Row("list-limit-0", "GET", DEALS, 422, query={"limit": "0"}, loc="limit"),
    Row("list-limit-101", "GET", DEALS, 422, query={"limit": "101"}, loc="limit"),
    Row("cursor-garbage", "GET", DEALS, 400, query={"cursor": "!!not a cursor!!"}),
    Row("cursor-base64-of-wrong-json", "GET", DEALS, 400, query={"cursor": b64(b'{"a": 1}')}),
    Row("cursor-too-long", "GET", DEALS, 400, query={"cursor": "A" * 3000}),
    Row("cursor-of-another-tenant", "GET", DEALS, 400, query={"cursor": "{other_cursor}"}),
    Row("cursor-forged-other-tenant-key", "GET", DEALS, 400, query={"cursor": "{forged_cursor}"}),
    Row("cursor-of-another-list", "GET", DEALS, 400, query={"cursor": "{status_cursor}"}),
    Row(
        "cursor-of-another-pipeline",
        "GET",
        DEALS,
        400,
        query={"pipeline_id": "{pipeline}", "cursor": "{deals_cursor}"},
    ),
    Row(
        "cursor-of-another-stage",
        "GET",
        DEALS,
        400,
        query={"stage_id": "proposal", "cursor": "{stage_cursor}"},
    ),
    Row("history-cursor-garbage", "GET", "/deals/{deal}/history", 400, query={"cursor": "%%%"}),
    Row("pipelines-cursor-garbage", "GET", PIPELINES, 400, query={"cursor": "%%%"}),
    # Pipelines ---------------------------------------------------------------------------------
    _pipeline(
        "pipeline-101-stages",
        [
            *[{"id": f"s{i}", "name": f"Stage {i}", "probability": 10} for i in range(99)],
            WON_STAGE,
            LOST_STAGE,
        ],
    ),
    _pipeline("pipeline-no-won-stage", [OPEN_STAGE, LOST_STAGE]),
    _pipeline(
        "pipeline-two-won-stages",
        [OPEN_STAGE, WON_STAGE, {**WON_STAGE, "id": "won-2", "name": "Won 2"}, LOST_STAGE],
    ),
    _pipeline("pipeline-no-lost-stage", [OPEN_STAGE, WON_STAGE]),
    _pipeline("pipeline-no-open-stage", [WON_STAGE, LOST_STAGE]),
    _pipeline(
        "pipeline-duplicated-stage-ids",
        [OPEN_STAGE, {**OPEN_STAGE, "name": "Open 2"}, WON_STAGE, LOST_STAGE],
    ),
    _pipeline("pipeline-no-stages", []),
    _pipeline("stage-probability-101", _stage(probability=101)),
    _pipeline("stage-probability-negative", _stage(probability=-1)),
    _pipeline("stage-probability-float", _stage(probability=50.5)),
    _pipeline("stage-probability-string", _stage(probability="50")),
    _pipeline("stage-kind-unknown", _stage(kind="maybe")),
    _pipeline("stage-id-upper-case", _stage(id="Open")),
    _pipeline("stage-rotting-days-0", _stage(rotting_days=0)),
    _pipeline("won-stage-probability-50", _won(probability=50)),
    _pipeline("won-stage-rotting-days", _won(rotting_days=30)),
    Row(
        "pipeline-unknown-field",
        "POST",
        PIPELINES,
        422,
        {"name": "X", "stages": _stage(), "default": True},
        loc="default",
    ),
    Row(
        "pipeline-stage-holding-deals-removed",
        "PATCH",
        "/pipelines/{pipeline}",
        409,
        {"stages": [s for s in PARTNER_STAGES if s["id"] != "demo"]},
    ),
    Row(
        "default-pipeline-stage-holding-deals-removed",
        "PATCH",
        "/pipelines/default",
        409,
        {"stages": DEFAULT_STAGES[1:]},
    ),
    # A stage holding open deals cannot become a lost (or won) one under them: its deals would
    # be open in a lost stage, without a lost reason.
    Row(
        "pipeline-stage-holding-deals-changes-kind",
        "PATCH",
        "/pipelines/{pipeline}",
        409,
        {
            "stages": [
                {**s, "probability": 0, "kind": "lost"} if s["id"] == "demo" else s
                for s in PARTNER_STAGES
            ]
        },
    ),
    Row("pipeline-patch-empty", "PATCH", "/pipelines/{pipeline}", 422, {}),
    Row("pipeline-patch-name-null", "PATCH", "/pipelines/{pipeline}", 422, {"name": None}),
    Row(
        "pipeline-patch-if-match-stale",
        "PATCH",
        "/pipelines/{pipeline}",
        412,
        {"name": "Renamed"},
        headers={"if-match": '"9"'},
    ),
    Row("delete-default-pipeline", "DELETE", "/pipelines/default", 409),
    Row("delete-pipeline-holding-deals", "DELETE", "/pipelines/{pipeline}", 409),
    Row("delete-pipeline-of-another-tenant", "DELETE", "/pipelines/{other_pipeline}", 404),
    Row("get-pipeline-missing", "GET", "/pipelines/{missing}", 404),
    Row("get-pipeline-bad-id", "GET", "/pipelines/Default", 422, loc="pipeline_id"),
    Row("board-missing-pipeline", "GET", "/pipelines/{missing}/board", 404),
    Row(
        "board-limit-51", "GET", "/pipelines/default/board", 422, query={"limit": "51"}, loc="limit"
    ),
    # Currencies ----------------------------------------------------------------------------------
    _rates("rate-float", {"base": "USD", "rates": {"EUR": 1.08}}, "rates"),
    _rates("rate-zero", {"base": "USD", "rates": {"EUR": "0"}}, "rates"),
    _rates("rate-negative", {"base": "USD", "rates": {"EUR": "-1.08"}}, "rates"),
    _rates("rate-exponent", {"base": "USD", "rates": {"EUR": "1e2"}}, "rates"),
    _rates(
        "rate-13-significant-digits", {"base": "USD", "rates": {"EUR": "1.234567890123"}}, "rates"
    ),
    _rates("rate-for-the-base", {"base": "USD", "rates": {"USD": "1"}}, "rates"),
    _rates("base-unknown", {"base": "XYZ", "rates": {}}, "base"),
    _rates("base-lowercase", {"base": "usd", "rates": {}}, "base"),
    _rates("base-missing", {"rates": {"EUR": "1.08"}}, "base"),
    _rates("rate-currency-unknown", {"base": "USD", "rates": {"XYZ": "1.5"}}, "rates"),
    _rates("rate-currency-lowercase", {"base": "USD", "rates": {"eur": "1.08"}}, "rates"),
    _rates("rates-unknown-field", {"base": "USD", "rates": {}, "version": 3}, "version"),
    Row(
        "rates-if-match-stale",
        "PUT",
        CURRENCIES,
        412,
        {"base": "USD", "rates": {"EUR": "1.08"}},
        headers={"if-match": '"9"'},
    ),
    # The forecast --------------------------------------------------------------------------------
    _forecast("forecast-from-after-to", 400, **{"from": "2027-06", "to": "2027-01"}),
    _forecast("forecast-37-months", 400, **{"from": "2027-01", "to": "2030-01"}),
    _forecast("forecast-period-week", 422, "period", period="week"),
    _forecast("forecast-as-of-malformed", 422, "as_of", as_of="yesterday"),
    _forecast("forecast-as-of-date-only", 422, "as_of", as_of="2027-01-01"),
    _forecast("forecast-from-month-13", 422, "from", **{"from": "2027-13"}),
    _forecast("forecast-to-not-a-month", 422, "to", to="March"),
    # `from` and `to` take "a day in" the month: the 99th is no day of February.
    _forecast("forecast-from-day-99", 422, "from", **{"from": "2027-02-99", "to": "2027-03"}),
    _forecast("forecast-pipeline-unknown", 404, pipeline_id="{missing}"),
    _forecast("forecast-pipeline-bad-id", 422, "pipeline_id", pipeline_id="sales"),
]


@pytest.fixture(scope="module")
def shared_table(contacts_module: ModuleType) -> Iterator[Any]:
    """One table for the whole module (the conftest's `table` is made anew for each test)."""
    from infra.cfn import table_create_kwargs

    crm_table = sys.modules["contacts_api.context"].table
    crm_table.client.create_table(**table_create_kwargs(table_name="crm-test"))
    yield crm_table
    crm_table.client.delete_table(TableName="crm-test")


@pytest.fixture(scope="module")
def contacts_api(contacts_module: ModuleType, shared_table: Any) -> Api:
    return Api(contacts_module.handler, template_routes("ContactsFunction"))


@pytest.fixture(scope="module")
def deals_routes(deals_module: ModuleType, shared_table: Any) -> Api:
    return Api(deals_module.handler, template_routes("DealsFunction"))


def _forged(real: str, tenant: str) -> str:
    """`real` with every key moved into `tenant`'s partitions: the server's own format."""
    payload = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    payload["k"] = {k: v.replace("T#acme#", f"T#{tenant}#") for k, v in payload["k"].items()}
    return b64(json.dumps(payload).encode())


@pytest.fixture(scope="module")
def world(contacts_api: Api, deals_routes: Api) -> dict[str, str]:
    """Tenant acme: two contacts, a company, the second pipeline "Partners" with two deals
    in its `demo` stage, and two deals in the default pipeline's first stage. Tenant other:
    a contact, a company, a pipeline and two deals."""
    contact = create(contacts_api, "/contacts", ADMIN, {"email": "ann@example.com"})["id"]
    contact2 = create(contacts_api, "/contacts", ADMIN, {"email": "bob@example.com"})["id"]
    company = create(contacts_api, "/companies", ADMIN, {"name": "Acme"})["id"]
    other_contact = create(contacts_api, "/contacts", OTHER, {"email": "oz@example.com"})["id"]
    other_company = create(contacts_api, "/companies", OTHER, {"name": "Other"})["id"]
    partners = {"name": "Partners", "stages": PARTNER_STAGES}
    pipeline = create(deals_routes, PIPELINES, ADMIN, partners)["id"]
    other_pipeline = create(deals_routes, PIPELINES, OTHER, partners)["id"]
    deal = create(
        deals_routes,
        DEALS,
        SALES,
        {**DEAL, "company_id": company, "contacts": [{"contact_id": contact}]},
    )["id"]
    create(deals_routes, DEALS, SALES, {**DEAL, "name": "Small one", "amount": "10.00"})
    for name in ("Partner one", "Partner two"):
        create(
            deals_routes,
            DEALS,
            SALES,
            {**DEAL, "name": name, "pipeline_id": pipeline, "stage_id": "demo"},
        )
    other_deal = create(deals_routes, DEALS, OTHER, DEAL)["id"]
    create(deals_routes, DEALS, OTHER, {**DEAL, "name": "Other two"})
    deals_cursor = next_cursor(deals_routes, DEALS, ADMIN)
    return {
        "contact": contact,
        "contact2": contact2,
        "company": company,
        "other_contact": other_contact,
        "other_company": other_company,
        "pipeline": pipeline,
        "other_pipeline": other_pipeline,
        "deal": deal,
        "other_deal": other_deal,
        "missing": new_ulid(),
        "deals_cursor": deals_cursor,
        "forged_cursor": _forged(deals_cursor, "other"),
        "other_cursor": next_cursor(deals_routes, DEALS, OTHER),
        "status_cursor": next_cursor(deals_routes, DEALS, ADMIN, {"status": "open"}),
        "stage_cursor": next_cursor(deals_routes, DEALS, ADMIN, {"stage_id": "qualification"}),
    }


def _stored() -> list[str]:
    """Every item of the table, as a Scan would return it (DynamoDB JSON), read from moto in
    this process: a Scan through botocore serializes every item, too slow to run per row."""
    return sorted(DynamoDbIsolation().table_lines("crm-test"))


def _by_key(lines: list[str]) -> dict[tuple[str, str], str]:
    return {(i["PK"]["S"], i["SK"]["S"]): line for line in lines for i in [json.loads(line)]}


def _restore(table: Any, before: list[str]) -> None:
    """Put the table back as it was before a row that wrote (a product bug, which that row
    reports), so that the rows after it still meet the world they expect."""
    now, then = _by_key(_stored()), _by_key(before)
    for key in now.keys() - then.keys():
        table.client.delete_item(
            TableName=table.name, Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}}
        )
    for key, line in then.items():
        if now.get(key) != line:
            table.client.put_item(TableName=table.name, Item=json.loads(line))


def _seen(deals_routes: Api, world: dict[str, str]) -> dict[str, Any]:
    """What a client sees of the world: the deal (with its version) and the board's totals."""
    return {
        "deal": get(deals_routes, f"/deals/{world['deal']}", ADMIN),
        "board": get(deals_routes, "/pipelines/default/board", ADMIN, query={"limit": "0"}),
    }


@pytest.fixture(scope="module")
def seen(deals_routes: Api, world: dict[str, str]) -> dict[str, Any]:
    """The world as a client sees it before any row runs."""
    return _seen(deals_routes, world)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_refused_and_changes_nothing(
    deals_routes: Api, shared_table: Any, world: dict[str, str], seen: dict[str, Any], row: Row
) -> None:
    before = _stored()
    try:
        reply = deals_routes.call(
            row.method,
            fill(row.path, world),
            USERS[row.user],
            fill(row.body, world),
            raw_body=row.raw,
            query=fill(dict(row.query), world) or None,
            headers=fill(dict(row.headers), world) or None,
        )
        assert_problem(reply, row.status, field=row.loc)
        assert _stored() == before
        assert _seen(deals_routes, world) == seen
    finally:
        _restore(shared_table, before)


def test_a_stage_holding_deals_is_named_with_its_count(
    deals_routes: Api, world: dict[str, str]
) -> None:
    """The 409 says which stage still holds deals, and how many, so a client can act."""
    reply = deals_routes.call(
        "PATCH",
        f"/pipelines/{world['pipeline']}",
        ADMIN,
        {"stages": [s for s in PARTNER_STAGES if s["id"] != "demo"]},
    )
    detail = assert_problem(reply, 409)["detail"]
    assert "demo" in detail, detail
    assert "2 deals" in detail, detail


def test_a_pipeline_holding_deals_says_how_many(deals_routes: Api, world: dict[str, str]) -> None:
    reply = deals_routes.call("DELETE", f"/pipelines/{world['pipeline']}", ADMIN)
    detail = assert_problem(reply, 409)["detail"]
    assert "2 deals" in detail, detail


def test_the_world_is_as_the_rows_expect(deals_routes: Api, world: dict[str, str]) -> None:
    """The rows refuse what they refuse for the reason they name, not because the world is
    off: the deal is valid and movable, and a rate makes EUR welcome."""
    deal = get(deals_routes, f"/deals/{world['deal']}", ADMIN)
    assert (deal["stage_id"], deal["status"], deal["version"]) == ("qualification", "open", 1)
    board = get(deals_routes, f"/pipelines/{world['pipeline']}/board", ADMIN)
    assert [s["count"] for s in board["stages"]] == [0, 2, 0, 0]
    assert get(deals_routes, CURRENCIES, ADMIN)["base"] == "USD"
    assert (
        patch(deals_routes, f"/deals/{world['deal']}", ADMIN, {"name": "Big one"})["version"] == 1
    )


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)
