"""Deals as a client sees them: create, move through the stages, history, board, forecast."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, User
from tests.support.calls import create, get

ADMIN = User("acme", ("admin",))
SALES = User("acme", ("sales",))


def deal(deals_api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Big one", "amount": "12500.00", "currency": "USD", "close_date": "2027-03-31"}
    return create(deals_api, "/deals", SALES, {**body, **fields})


def test_a_deal_moves_through_its_stages_and_the_forecast_follows(api: Api, deals_api: Api) -> None:
    person = create(api, "/contacts", ADMIN, {"email": "ann@example.com"})
    created = deal(deals_api, contacts=[{"contact_id": person["id"], "role": "buyer"}])
    assert created["stage_id"] == "qualification"
    assert created["status"] == "open"
    assert created["contacts"][0]["primary"] is True
    moved = deals_api.call(
        "PATCH",
        f"/deals/{created['id']}",
        SALES,
        {"stage_id": "proposal"},
        headers={"if-match": '"1"'},
    )
    assert moved.status == 200, moved.text
    board = get(deals_api, "/pipelines/default/board", SALES)
    proposal = next(s for s in board["stages"] if s["stage_id"] == "proposal")
    assert proposal["count"] == 1
    assert proposal["sums"] == {"USD": "12500.00"}
    forecast = get(deals_api, "/forecast", SALES, query={"from": "2027-01", "to": "2027-03"})
    march = forecast["periods"][2]
    assert march["period"] == "2027-03"
    assert march["amount"] == "12500.00"
    assert march["weighted_amount"] == "6250.00"
    won = deals_api.call("PATCH", f"/deals/{created['id']}", SALES, {"stage_id": "won"})
    assert won.status == 200, won.text
    assert won.json["status"] == "won"
    history = get(deals_api, f"/deals/{created['id']}/history", SALES)
    assert [h["action"] for h in history["items"]] == ["updated", "updated", "created"]
    forecast = get(deals_api, "/forecast", SALES, query={"from": "2027-01", "to": "2027-03"})
    assert forecast["periods"][2]["won_amount"] == "12500.00"
    listed = get(deals_api, "/deals", SALES, query={"contact_id": person["id"]})
    assert [d["id"] for d in listed["items"]] == [created["id"]]


def test_a_tenant_sets_its_own_lost_reasons(deals_api: Api) -> None:
    admin = User("acme", ("admin",))
    assert get(deals_api, "/settings/deals", SALES)["version"] == 0
    reasons = [{"code": "price", "label": "Too dear"}, {"code": "legal", "label": "Legal review"}]
    reply = deals_api.call("PUT", "/settings/deals", admin, {"lost_reasons": reasons})
    assert reply.status == 200, reply.text
    assert reply.headers["etag"] == '"1"'
    lost = {"stage_id": "lost", "lost_reason": {"reason": "legal", "note": "MSA stuck"}}
    assert deal(deals_api, **lost)["lost_reason"] == {"reason": "legal", "note": "MSA stuck"}
    refused = deals_api.call(
        "POST",
        "/deals",
        SALES,
        {
            "name": "x",
            "amount": "1.00",
            "currency": "USD",
            "close_date": "2027-01-01",
            "stage_id": "lost",
            "lost_reason": {"reason": "timing"},
        },
    )
    assert refused.status == 422, refused.text
    assert refused.json["errors"][0]["loc"] == ["body", "lost_reason", "reason"]
    duplicate = {"lost_reasons": [reasons[0], reasons[0]]}
    reply = deals_api.call("PUT", "/settings/deals", admin, duplicate)
    assert reply.status == 422
    assert reply.json["errors"][0]["loc"] == ["body", "lost_reasons"]


def test_a_forecast_range_is_of_the_years_deals_close_in(deals_api: Api) -> None:
    quarter = deals_api.call(
        "GET", "/forecast", SALES, query={"from": "2027-05", "period": "quarter"}
    )
    assert quarter.status == 200, quarter.text
    assert [p["period"] for p in quarter.json["periods"]] == [
        "2027-Q2",
        "2027-Q3",
        "2027-Q4",
        "2028-Q1",
    ]
    for query in ({"from": "0000-01", "period": "quarter"}, {"to": "9999-12"}):
        reply = deals_api.call("GET", "/forecast", SALES, query=query)
        assert reply.status == 422, reply.text
