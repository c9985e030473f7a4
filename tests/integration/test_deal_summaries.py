"""A contact's and a company's page show their deals in short (`deals`: open, won, the won
amounts per base currency), kept exactly in each deal's own transaction: whatever happens to
the deals, the summaries follow, to the last digit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from crm_core import keys
from crm_core.records.deal import MAX_DEAL_CONTACTS
from crm_core.table import MAX_TRANSACTION_ITEMS, Table
from tests.support.api import Api, User
from tests.support.aws_calls import count_calls
from tests.support.calls import create, get, patch

ADMIN = User("acme", ("admin",))
SALES = User("acme", ("sales",))
NONE = {"open": 0, "won": 0, "won_amount": {}}


def person(api: Api, name: str) -> str:
    return str(create(api, "/contacts", ADMIN, {"email": f"{name}@example.com"})["id"])


def firm(api: Api, name: str) -> str:
    return str(create(api, "/companies", ADMIN, {"name": name})["id"])


def new_deal(deals_api: Api, contacts: list[str], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Renewal",
        "amount": "1000.00",
        "currency": "USD",
        "close_date": "2027-02-28",
        "contacts": [{"contact_id": c} for c in contacts],
        **fields,
    }
    return create(deals_api, "/deals", SALES, body)


def deals_of_contact(api: Api, contact_id: str) -> Any:
    return get(api, f"/contacts/{contact_id}", SALES)["deals"]


def deals_of_company(api: Api, company_id: str) -> Any:
    return get(api, f"/companies/{company_id}", SALES)["deals"]


def change(deals_api: Api, deal: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return patch(deals_api, f"/deals/{deal['id']}", SALES, body)


@pytest.fixture
def transactions(deals_api: Api) -> Iterator[list[int]]:
    """The number of items of each transaction the deals function writes."""
    table: Table = sys.modules["deals_api.context"].deal_store.table
    sizes: list[int] = []
    original = table.transact

    def counted(operations: Any) -> None:
        sizes.append(len(operations))
        original(operations)

    table.transact = counted  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        del table.transact


def test_the_summaries_follow_every_change_of_the_deals(api: Api, deals_api: Api) -> None:
    ann, bob, cat = person(api, "ann"), person(api, "bob"), person(api, "cat")
    acme, globex = firm(api, "Acme"), firm(api, "Globex")
    reply = deals_api.call(
        "PUT", "/settings/currencies", ADMIN, {"base": "USD", "rates": {"EUR": "1.0833333"}}
    )
    assert reply.status == 200, reply.text

    first = new_deal(deals_api, [ann, bob], company_id=acme)
    second = new_deal(deals_api, [ann], company_id=acme, amount="300.00", currency="EUR")
    assert deals_of_contact(api, ann) == {"open": 2, "won": 0, "won_amount": {}}
    assert deals_of_contact(api, bob) == {"open": 1, "won": 0, "won_amount": {}}
    assert deals_of_contact(api, cat) == NONE
    assert deals_of_company(api, acme) == {"open": 2, "won": 0, "won_amount": {}}
    assert deals_of_company(api, globex) == NONE

    # Moved to another open stage, renamed: the counts stay.
    change(deals_api, first, {"stage_id": "proposal", "name": "Renewal 2027"})
    assert deals_of_contact(api, ann)["open"] == 2

    # Won, in EUR: at the rate of the moment, 300 x 1.0833333 = 324.99999 USD (exact, shown
    # to the cent).
    change(deals_api, second, {"stage_id": "won"})
    won = {"open": 1, "won": 1, "won_amount": {"USD": "325.00"}}
    assert deals_of_contact(api, ann) == won
    assert deals_of_company(api, acme) == won
    assert deals_of_contact(api, bob) == {"open": 1, "won": 0, "won_amount": {}}

    # Its amount changes (the rate of its closing kept, though today's rate moves).
    reply = deals_api.call(
        "PUT", "/settings/currencies", ADMIN, {"base": "USD", "rates": {"EUR": "2"}}
    )
    assert reply.status == 200, reply.text
    change(deals_api, second, {"amount": "300.03"})
    # 300.03 x 1.0833333 = 325.0324899...: exactly, not the 325.00 + 0.03 x rate rounded twice.
    assert deals_of_contact(api, ann)["won_amount"] == {"USD": "325.03"}
    item = api_table(api).get(keys.contact_deal_summary("acme", ann), exact=True)
    assert item is not None
    assert item["won|USD"] == Decimal("325.032489999")

    # The first deal is won too, then a contact leaves it and another joins.
    change(deals_api, first, {"stage_id": "won"})
    assert deals_of_contact(api, ann) == {"open": 0, "won": 2, "won_amount": {"USD": "1325.03"}}
    change(deals_api, first, {"contacts": [{"contact_id": cat}]})
    assert deals_of_contact(api, ann) == {"open": 0, "won": 1, "won_amount": {"USD": "325.03"}}
    assert deals_of_contact(api, bob) == NONE
    assert deals_of_contact(api, cat) == {"open": 0, "won": 1, "won_amount": {"USD": "1000.00"}}

    # It moves to another company, and is reopened.
    change(deals_api, first, {"company_id": globex})
    assert deals_of_company(api, acme) == {"open": 0, "won": 1, "won_amount": {"USD": "325.03"}}
    assert deals_of_company(api, globex) == {
        "open": 0,
        "won": 1,
        "won_amount": {"USD": "1000.00"},
    }
    change(deals_api, first, {"stage_id": "negotiation"})
    assert deals_of_company(api, globex) == {"open": 1, "won": 0, "won_amount": {}}
    assert deals_of_contact(api, cat) == {"open": 1, "won": 0, "won_amount": {}}

    # Lost, and deleted: nothing is left of them.
    change(deals_api, first, {"stage_id": "lost", "lost_reason": {"reason": "price"}})
    assert deals_of_company(api, globex) == NONE
    assert deals_api.call("DELETE", f"/deals/{second['id']}", SALES).status == 204
    assert deals_of_contact(api, ann) == NONE
    assert deals_of_company(api, acme) == NONE


def api_table(api: Api) -> Table:
    table: Table = sys.modules["contacts_api.context"].table
    return table


def test_a_base_currency_changed_between_two_wins_keeps_both_sums(api: Api, deals_api: Api) -> None:
    ann = person(api, "ann")
    first = new_deal(deals_api, [ann], amount="10.00")
    change(deals_api, first, {"stage_id": "won"})
    reply = deals_api.call(
        "PUT", "/settings/currencies", ADMIN, {"base": "EUR", "rates": {"USD": "0.9"}}
    )
    assert reply.status == 200, reply.text
    second = new_deal(deals_api, [ann], amount="10.00")
    change(deals_api, second, {"stage_id": "won"})
    assert deals_of_contact(api, ann) == {
        "open": 0,
        "won": 2,
        "won_amount": {"EUR": "9.00", "USD": "10.00"},
    }


def test_a_deleted_contact_never_blocks_a_deal(api: Api, deals_api: Api) -> None:
    ann, bob = person(api, "ann"), person(api, "bob")
    deal = new_deal(deals_api, [ann, bob])
    assert api.call("DELETE", f"/contacts/{ann}", ADMIN).status == 204
    change(deals_api, deal, {"stage_id": "won"})
    assert deals_of_contact(api, bob) == {"open": 0, "won": 1, "won_amount": {"USD": "1000.00"}}
    change(deals_api, deal, {"contacts": [{"contact_id": bob}]})
    assert deals_api.call("DELETE", f"/deals/{deal['id']}", SALES).status == 204
    assert deals_of_contact(api, bob) == NONE


def test_a_page_reads_the_record_and_its_summary_in_one_call(api: Api, deals_api: Api) -> None:
    ann, acme = person(api, "ann"), firm(api, "Acme")
    new_deal(deals_api, [ann], company_id=acme)
    client = api_table(api).client
    for path in (f"/contacts/{ann}", f"/companies/{acme}"):
        with count_calls(client) as log:
            reply = api.call("GET", path, SALES)
        assert reply.status == 200, reply.text
        assert reply.json["deals"]["open"] == 1
        assert log.calls == ["BatchGetItem"]


def test_the_deals_of_a_contact_list_only_its_deals(api: Api, deals_api: Api) -> None:
    # The contact's summary lives in the partition of its deal links; the list skips it.
    ann = person(api, "ann")
    deals = [new_deal(deals_api, [ann], close_date=f"2027-0{m}-01") for m in (1, 2, 3)]
    listed = get(deals_api, "/deals", SALES, query={"contact_id": ann, "limit": "2"})
    assert [d["id"] for d in listed["items"]] == [d["id"] for d in deals[:2]]
    rest = get(
        deals_api,
        "/deals",
        SALES,
        query={"contact_id": ann, "limit": "2", "cursor": listed["next_cursor"]},
    )
    assert [d["id"] for d in rest["items"]] == [deals[2]["id"]]
    assert rest["next_cursor"] is None


def test_twenty_contacts_replaced_by_twenty_others_fit_one_transaction(
    api: Api, deals_api: Api, transactions: list[int]
) -> None:
    first = [person(api, f"a{n}") for n in range(MAX_DEAL_CONTACTS)]
    then = [person(api, f"b{n}") for n in range(MAX_DEAL_CONTACTS)]
    acme, globex = firm(api, "Acme"), firm(api, "Globex")
    pipeline = create(
        deals_api,
        "/pipelines",
        ADMIN,
        {
            "name": "Partners",
            "stages": [
                {"id": "talk", "name": "Talk", "probability": 20, "kind": "open"},
                {"id": "signed", "name": "Signed", "probability": 100, "kind": "won"},
                {"id": "gone", "name": "Gone", "probability": 0, "kind": "lost"},
            ],
        },
    )
    deal = new_deal(deals_api, first, company_id=acme)
    # Everything a change can move at once: every contact, the company, the pipeline (and
    # so the stage), the status (won: an extra event), the close date (another month).
    change(
        deals_api,
        deal,
        {
            "contacts": [{"contact_id": c} for c in then],
            "company_id": globex,
            "pipeline_id": pipeline["id"],
            "stage_id": "signed",
            "close_date": "2027-05-31",
            "amount": "2000.00",
        },
    )
    biggest = transactions[-1]
    # 40 links and 40 contact summaries, 2 company summaries, the deal, its history, two
    # pipelines' checks, months and boards, two events.
    assert biggest == 94
    assert biggest <= MAX_TRANSACTION_ITEMS
    assert all(deals_of_contact(api, c) == NONE for c in first)
    won = {"open": 0, "won": 1, "won_amount": {"USD": "2000.00"}}
    assert all(deals_of_contact(api, c) == won for c in then)
    assert deals_of_company(api, acme) == NONE
    assert deals_of_company(api, globex) == won
    assert deals_api.call("DELETE", f"/deals/{deal['id']}", SALES).status == 204
    assert all(deals_of_contact(api, c) == NONE for c in then)
