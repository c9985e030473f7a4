"""The reports API: the activities report from the aggregates (JSON and CSV, in any
period, for one owner), the tenant's report settings, bad parameters and tenant isolation."""

from __future__ import annotations

import csv
import io
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer, load_function
from tests.support.activities import path
from tests.support.api import Api, LambdaContext, User, template_routes
from tests.support.calls import create, get
from tests.support.checks import assert_problem
from tests.support.events import outbox_events

ADMIN = User("acme", ("admin",), sub="ann")
VIEWER = User("acme", ("viewer",), sub="vic")
SALES = User("acme", ("sales",), sub="bob")
OTHER = User("globex", ("admin",), sub="gus")
CALL = {"type": "call", "direction": "outbound", "outcome": "connected"}


@pytest.fixture(scope="module")
def reports_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("reports")


@pytest.fixture
def reports(reports_module: ModuleType, table: Table) -> Api:
    return Api(reports_module.handler, template_routes("ReportsFunction"))


@pytest.fixture(scope="module")
def aggregator(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("report_aggregator")


def aggregate(table: Table, aggregator: ConsumerFunction, contact_id: str) -> None:
    aggregator.context.zones._known.clear()
    partition = keys.contact("acme", contact_id)["PK"]
    for kind in ("ActivityLogged", "ActivityUpdated", "ActivityDeleted"):
        for event in outbox_events(table, partition, kind):
            aggregator.handler(event, LambdaContext())


@pytest.fixture
def logged(api: Api, activity_api: Api, table: Table, aggregator: ConsumerFunction) -> str:
    """Ann's two calls and Bob's note in early December, Bob's call in November."""
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})["id"]
    where = f"/contacts/{contact}/activities"
    create(activity_api, where, ADMIN, {**CALL, "occurred_at": "2026-12-01T10:00:00Z"})
    create(activity_api, where, ADMIN, {**CALL, "occurred_at": "2026-12-02T10:00:00Z"})
    note = {"type": "note", "body": '=HYPERLINK("x")', "occurred_at": "2026-12-02T11:00:00Z"}
    create(activity_api, where, SALES, note)
    create(activity_api, where, SALES, {**CALL, "occurred_at": "2026-11-20T10:00:00Z"})
    gone = create(activity_api, where, SALES, {**CALL, "occurred_at": "2026-12-03T10:00:00Z"})
    assert activity_api.call("DELETE", path(gone), ADMIN).status == 204
    aggregate(table, aggregator, contact)
    return contact


def report(reports: Api, user: User, **query: str) -> Any:
    reply = reports.call("GET", "/reports/activities", user, query=query)
    assert reply.status == 200, reply.text
    return reply


@pytest.mark.usefixtures("logged")
def test_the_activities_report_by_month_day_and_owner(reports: Api) -> None:
    by_month = report(reports, VIEWER, **{"from": "2026-11-01", "to": "2026-12-31"}).json
    assert by_month["report"] == "activities"
    assert by_month["params"] == {"from": "2026-11-01", "to": "2026-12-31", "period": "month"}
    rows = {(r["period"], r["owner_id"], r["type"]): r["count"] for r in by_month["rows"]}
    assert rows == {
        ("2026-11", "bob", "call"): 1,
        ("2026-12", "ann", "call"): 2,
        ("2026-12", "bob", "note"): 1,
    }
    assert by_month["totals"] == {"count": 4}
    by_day = report(
        reports, VIEWER, **{"from": "2026-12-02", "to": "2026-12-02", "period": "day"}
    ).json
    assert [(r["owner_id"], r["type"], r["count"]) for r in by_day["rows"]] == [
        ("ann", "call", 1),
        ("bob", "note", 1),
    ]
    bob = report(
        reports,
        VIEWER,
        **{"from": "2026-10-01", "to": "2026-12-31", "period": "quarter", "owner_id": "bob"},
    ).json
    assert [(r["period"], r["type"], r["count"]) for r in bob["rows"]] == [
        ("2026-Q4", "call", 1),
        ("2026-Q4", "note", 1),
    ]


@pytest.mark.usefixtures("logged")
def test_the_report_as_csv_opens_in_a_spreadsheet_safely(reports: Api) -> None:
    query = {"from": "2026-11-01", "to": "2026-12-31", "format": "csv"}
    reply = report(reports, VIEWER, **query)
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert "activities-2026-11-01-2026-12-31-month.csv" in reply.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["period", "owner_id", "type", "count"]
    assert ["2026-12", "ann", "call", "2"] in rows
    by_accept = reports.call(
        "GET",
        "/reports/activities",
        VIEWER,
        query={"from": "2026-11-01", "to": "2026-12-31"},
        headers={"accept": "text/csv"},
    )
    assert by_accept.text == reply.text


@pytest.mark.usefixtures("logged")
def test_another_tenant_sees_none_of_it(reports: Api) -> None:
    other = report(reports, OTHER, **{"from": "2026-11-01", "to": "2026-12-31"}).json
    assert other["rows"] == []
    assert other["totals"] == {"count": 0}


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ({"from": "2026-12-02", "to": "2026-12-01"}, 400, "before `from`"),
        ({"from": "2020-01-01", "to": "2026-01-01", "period": "day"}, 400, "five years"),
        ({"from": "2026-12-01", "to": "2026-12-02", "period": "year"}, 422, None),
        ({"from": "2026-13-01", "to": "2026-12-02"}, 422, None),
        ({"to": "2026-12-02"}, 422, None),
        ({"from": "2026-12-01", "to": "2026-12-02", "format": "xml"}, 422, None),
    ],
)
def test_bad_parameters_are_clear_4xx(
    reports: Api, query: dict[str, str], status: int, detail: str | None
) -> None:
    reply = reports.call("GET", "/reports/activities", VIEWER, query=query)
    assert_problem(reply, status)
    if detail:
        assert detail in reply.json["detail"]
    unknown = reports.call("GET", "/reports/nonsense", VIEWER, query=query)
    assert unknown.status in (404, 422)


def test_report_settings_are_the_admins_and_move_the_days(
    reports: Api, api: Api, activity_api: Api, table: Table, aggregator: ConsumerFunction
) -> None:
    assert get(reports, "/settings/reports", VIEWER) == {"timezone": "UTC", "version": 0}
    denied = reports.call("PUT", "/settings/reports", SALES, {"timezone": "Asia/Tokyo"})
    assert_problem(denied, 403)
    bad = reports.call("PUT", "/settings/reports", ADMIN, {"timezone": "Mars/Olympus"})
    assert_problem(bad, 422)
    saved = reports.call("PUT", "/settings/reports", ADMIN, {"timezone": "Asia/Tokyo"})
    assert saved.status == 200, saved.text
    assert saved.json == {"timezone": "Asia/Tokyo", "version": 1}
    stale = reports.call(
        "PUT", "/settings/reports", ADMIN, {"timezone": "UTC"}, headers={"if-match": '"0"'}
    )
    assert_problem(stale, 412)
    contact = create(api, "/contacts", ADMIN, {"email": "kei@example.com"})["id"]
    # 20:00 UTC on the 1st is 05:00 on the 2nd in Tokyo.
    create(
        activity_api,
        f"/contacts/{contact}/activities",
        ADMIN,
        {**CALL, "occurred_at": "2026-12-01T20:00:00Z"},
    )
    aggregate(table, aggregator, contact)
    day = report(reports, VIEWER, **{"from": "2026-12-02", "to": "2026-12-02", "period": "day"})
    assert [(r["owner_id"], r["count"]) for r in day.json["rows"]] == [("ann", 1)]
