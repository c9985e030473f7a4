"""Deals through `crm dev` (issue 19's done-when): a deal is created, moved through the
stages, its history, the board and the forecast follow (the forecast also as it stood before
the win, and as of yesterday, before the deal existed); it is won, DealWon is on the bus and
its contact becomes a customer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from infra.aws import boto_client
from tests.e2e.conftest import CloudProcess

WITHIN = 30.0  # seconds for an event to reach its consumers (typically well under 2 s here)
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], within: float = WITHIN) -> T:
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.1)


def bus_events(cloud: CloudProcess, detail_type: str, tenant: str) -> list[dict[str, Any]]:
    status, _, recent = cloud.call("GET", "/_local/events", None, Accept="application/json")
    assert status == 200, recent
    return [
        e
        for e in recent
        if e["detail-type"] == detail_type and e["detail"]["metadata"]["tenant_id"] == tenant
    ]


def ok(
    cloud: CloudProcess, method: str, path: str, token: str, body: Any = None, **headers: str
) -> Any:
    status, _, answer = cloud.call(method, path, token, body, **headers)
    assert status in (200, 201), (method, path, status, answer)
    return answer


def test_a_deal_through_its_pipeline_to_won_and_a_customer(cloud: CloudProcess) -> None:
    tenant = f"deals-{uuid.uuid4().hex[:10]}"
    assert cloud.crm("tenant", "create", tenant).returncode == 0
    admin, sales = cloud.token(tenant, "admin"), cloud.token(tenant, "sales")
    ok(cloud, "PUT", "/settings/currencies", admin, {"base": "EUR", "rates": {"USD": "0.92"}})
    person = ok(cloud, "POST", "/contacts", sales, {"email": "buyer@example.com"})
    body = {
        "name": "Globex: 40 seats",
        "amount": "48000.00",
        "currency": "USD",
        "close_date": (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%d"),
        "contacts": [{"contact_id": person["id"], "role": "buyer"}],
    }
    deal = ok(cloud, "POST", "/deals", sales, body)
    month = body["close_date"][:7]
    path = f"/deals/{deal['id']}"
    version = deal["version"]
    for stage in ("needs-analysis", "proposal", "negotiation"):
        moved = ok(cloud, "PATCH", path, sales, {"stage_id": stage}, **{"If-Match": f'"{version}"'})
        version = moved["version"]
    before_win = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    # The contact became an opportunity when the deal was created.
    wait_for(
        "the contact an opportunity",
        lambda: (
            ok(cloud, "GET", f"/contacts/{person['id']}", sales)["lifecycle_stage"] == "opportunity"
            or None
        ),
    )
    board = ok(cloud, "GET", "/pipelines/default/board", sales)
    negotiation = next(s for s in board["stages"] if s["stage_id"] == "negotiation")
    assert negotiation["count"] == 1
    assert negotiation["sums"] == {"USD": "48000.00"}
    assert negotiation["amount"] == "44160.00"  # 48,000 USD at 0.92
    assert negotiation["weighted_amount"] == "35328.00"  # 80 %
    assert [d["id"] for d in negotiation["deals"]] == [deal["id"]]
    time.sleep(0.01)
    won = ok(cloud, "PATCH", path, sales, {"stage_id": "won"})
    assert won["status"] == "won"
    assert won["closing"] == {"base": "EUR", "rate": "0.92", "amount": "44160.00"}
    history = ok(cloud, "GET", f"{path}/history", sales)["items"]
    stages = [
        (c["previous"], c["value"])
        for entry in reversed(history)
        for c in entry["changes"]
        if c["field"] == "stage_id"
    ]
    assert stages == [
        (None, "qualification"),
        ("qualification", "needs-analysis"),
        ("needs-analysis", "proposal"),
        ("proposal", "negotiation"),
        ("negotiation", "won"),
    ]
    query = f"/forecast?from={month}&to={month}"
    now = ok(cloud, "GET", query, sales)["periods"][0]
    assert (now["won_count"], now["won_amount"], now["count"]) == (1, "44160.00", 0)
    then = ok(cloud, "GET", f"{query}&as_of={before_win}", sales)["periods"][0]
    assert (then["count"], then["amount"], then["weighted_amount"]) == (1, "44160.00", "35328.00")
    assert then["won_count"] == 0
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ok(cloud, "GET", f"{query}&as_of={yesterday}", sales)["periods"][0]["count"] == 0
    # DealWon on the bus, and the contact a customer.
    event = wait_for("DealWon on the bus", lambda: bus_events(cloud, "DealWon", tenant) or None)
    assert event[0]["detail"]["data"]["deal"]["id"] == deal["id"]
    wait_for(
        "the contact a customer",
        lambda: (
            ok(cloud, "GET", f"/contacts/{person['id']}", sales)["lifecycle_stage"] == "customer"
            or None
        ),
    )
    # One transaction per move: the table's items of the deal are its own and its history's.
    running = cloud.running
    (table_name,) = running["tables"]
    ddb = boto_client("dynamodb", running["endpoint_url"])
    items = ddb.query(
        TableName=table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :h)",
        ExpressionAttributeValues={
            ":pk": {"S": f"T#{tenant}#DEAL#{deal['id']}"},
            ":h": {"S": "H#"},
        },
    )["Items"]
    assert len(items) == 5
