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
