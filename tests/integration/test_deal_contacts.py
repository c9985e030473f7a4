"""deal_contacts: the contacts of an open deal become opportunities, of a won deal customers;
forward only, never over a person's later choice, whatever is delivered twice, at once, or
out of order. Each test changes deals through the API, takes the events that change wrote to
the outbox, and hands them to the function as EventBridge delivers them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.deals.contact_stages import promotes
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create, get, patch
from tests.support.events import delivered, redelivered

SALES = User("acme", ("sales",))


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("deal_contacts")


def outbox(table: Table, deal_id: str) -> list[dict[str, Any]]:
    """The deal's events, oldest first."""
    partition = keys.deal_partition("acme", deal_id)
    items = table.query_all(None, partition, sort_below="P", consistent=True)
    found = [i for i in items if i["SK"].startswith(keys.OUTBOX_PREFIX)]
    return sorted(found, key=lambda i: (i["occurred_at"], i["event_id"]))


def events_of(table: Table, deal_id: str, detail_type: str) -> list[dict[str, Any]]:
    return [delivered(i) for i in outbox(table, deal_id) if i["detail_type"] == detail_type]


def deliver(function: ConsumerFunction, event: dict[str, Any]) -> Any:
    return function.handler(event, LambdaContext())


def stage(api: Api, contact_id: str) -> str:
    return str(get(api, f"/contacts/{contact_id}", SALES)["lifecycle_stage"])


def new_deal(deals_api: Api, *contact_ids: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Renewal",
        "amount": "900.00",
        "currency": "USD",
        "close_date": "2027-02-28",
        "contacts": [{"contact_id": c} for c in contact_ids],
        **fields,
    }
    return create(deals_api, "/deals", SALES, body)


def test_an_open_deal_makes_opportunities_and_a_won_one_customers(
    api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    lead = create(api, "/contacts", SALES, {"email": "lead@example.com"})
    sql = create(api, "/contacts", SALES, {"email": "sql@example.com", "lifecycle_stage": "sql"})
    deal = new_deal(deals_api, lead["id"], sql["id"])
    (created,) = events_of(table, deal["id"], "DealCreated")
    assert deliver(function, created) == {"promoted": 2}
    assert stage(api, lead["id"]) == stage(api, sql["id"]) == "opportunity"
    # The change is the function's, not a person's: scoring may still move the contact.
    assert "stage_changed_at" not in table.get(keys.contact("acme", lead["id"]))  # type: ignore[operator]
    patch(deals_api, f"/deals/{deal['id']}", SALES, {"stage_id": "won"})
    (won,) = events_of(table, deal["id"], "DealWon")
    assert deliver(function, won) == {"promoted": 2}
    assert stage(api, lead["id"]) == "customer"
    # Delivered again (a new EventBridge id, the same event id): nothing more happens.
    assert deliver(function, redelivered(won)) == {"promoted": 2}
    assert get(api, f"/contacts/{lead['id']}", SALES)["version"] == 3


def test_out_of_order_delivery_never_moves_a_customer_back(
    api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    person = create(api, "/contacts", SALES, {"email": "late@example.com"})
    deal = new_deal(deals_api, person["id"])
    patch(deals_api, f"/deals/{deal['id']}", SALES, {"stage_id": "won"})
    deliver(function, events_of(table, deal["id"], "DealWon")[0])
    assert stage(api, person["id"]) == "customer"
    assert deliver(function, events_of(table, deal["id"], "DealCreated")[0]) == {"promoted": 0}
    assert deliver(function, events_of(table, deal["id"], "DealStageChanged")[0]) == {"promoted": 0}
    assert stage(api, person["id"]) == "customer"


def test_a_persons_later_choice_of_stage_wins(
    api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    person = create(api, "/contacts", SALES, {"email": "choice@example.com"})
    deal = new_deal(deals_api, person["id"])
    # After the deal was created, someone sets the contact's stage by hand.
    patch(api, f"/contacts/{person['id']}", SALES, {"lifecycle_stage": "subscriber"})
    assert deliver(function, events_of(table, deal["id"], "DealCreated")[0]) == {"promoted": 0}
    assert stage(api, person["id"]) == "subscriber"
    # A later change of the deal is later than the person's choice: it applies.
    patch(deals_api, f"/deals/{deal['id']}", SALES, {"stage_id": "won"})
    assert deliver(function, events_of(table, deal["id"], "DealWon")[0]) == {"promoted": 1}
    assert stage(api, person["id"]) == "customer"


def test_lost_deals_evangelists_and_gone_contacts_are_left_alone(
    api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    fan = create(
        api, "/contacts", SALES, {"email": "fan@example.com", "lifecycle_stage": "evangelist"}
    )
    gone = create(api, "/contacts", SALES, {"email": "gone@example.com"})
    deal = new_deal(
        deals_api, fan["id"], gone["id"], stage_id="lost", lost_reason={"reason": "timing"}
    )
    admin = User("acme", ("admin",))
    assert api.call("DELETE", f"/contacts/{gone['id']}", admin).status == 204
    assert events_of(table, deal["id"], "DealCreated")
    assert deliver(function, events_of(table, deal["id"], "DealCreated")[0]) == {"promoted": 0}
    patch(deals_api, f"/deals/{deal['id']}", SALES, {"stage_id": "proposal"})
    assert deliver(function, events_of(table, deal["id"], "DealStageChanged")[0]) == {"promoted": 0}
    assert stage(api, fan["id"]) == "evangelist"


def test_concurrent_deliveries_of_two_deals_promote_once_and_to_the_furthest_stage(
    api: Api, deals_api: Api, table: Table, function: ConsumerFunction
) -> None:
    person = create(api, "/contacts", SALES, {"email": "both@example.com"})
    first = new_deal(deals_api, person["id"])
    second = new_deal(deals_api, person["id"], stage_id="won")
    deliveries = [
        events_of(table, first["id"], "DealCreated")[0],
        events_of(table, second["id"], "DealWon")[0],
        events_of(table, second["id"], "DealCreated")[0],
    ] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda e: _deliver_retrying(function, redelivered(e)), deliveries))
    assert stage(api, person["id"]) == "customer"


def _deliver_retrying(function: ConsumerFunction, event: dict[str, Any]) -> None:
    """As Lambda does: an invocation refused while the same event runs elsewhere is retried."""
    for _ in range(50):
        try:
            deliver(function, event)
            return
        except Exception as error:
            if type(error).__name__ != "EventInProgress":
                raise
    raise AssertionError("never processed")


@pytest.mark.parametrize(
    ("stage_now", "changed_at", "target", "expected"),
    [
        ("lead", None, "opportunity", True),
        ("subscriber", None, "customer", True),
        ("opportunity", None, "opportunity", False),
        ("customer", None, "opportunity", False),
        ("evangelist", None, "customer", False),
        ("other", None, "customer", False),
        ("mql", "2027-01-01T00:00:00.000Z", "customer", False),  # the same moment: the person's
        ("mql", "2026-12-31T23:59:59.999Z", "customer", True),
    ],
)
def test_the_rule(stage_now: str, changed_at: str | None, target: str, expected: bool) -> None:
    contact = {"lifecycle_stage": stage_now, "stage_changed_at": changed_at}
    assert promotes(contact, target, "2027-01-01T00:00:00.000Z") is expected
