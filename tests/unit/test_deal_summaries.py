"""What a deal's change does to its contacts' and company's deal summaries (pure, no I/O)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.deals import bookkeeping
from crm_core.deals.summaries import Holder, contribution, summary_deltas
from crm_core.records.deal_totals import deal_totals

ANN, BOB, CAT = (
    "01J0000000000000000000ANN0",
    "01J0000000000000000000B0B0",
    "01J00000000000000000000CA7",
)
ACME, GLOBEX = "01J0000000000000000000ACME", "01J00000000000000000G10BEX"


def deal(status: str = "open", **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "status": status,
        "amount": "1000.00",
        "currency": "USD",
        "contacts": [{"contact_id": ANN}, {"contact_id": BOB}],
        "company_id": ACME,
        **fields,
    }
    if status != "open" and "closing" not in state:
        state["closing"] = {"base": "USD", "rate": "1", "amount": state["amount"]}
    return state


def test_a_new_open_deal_counts_once_for_each_contact_and_its_company() -> None:
    assert summary_deltas(None, deal()) == {
        ("company", ACME): {"open": 1},
        ("contact", ANN): {"open": 1},
        ("contact", BOB): {"open": 1},
    }


def test_winning_moves_the_count_and_adds_the_amount_in_the_base_of_the_closing() -> None:
    won = deal("won", amount="1000.00", currency="EUR", closing={"base": "USD", "rate": "1.085"})
    deltas = summary_deltas(deal(currency="EUR"), won)
    assert deltas[("contact", ANN)] == {"open": -1, "won": 1, "won|USD": Decimal("1085.000")}
    assert set(deltas) == {("company", ACME), ("contact", ANN), ("contact", BOB)}


def test_a_won_deal_keeps_its_closing_rate_when_its_amount_changes() -> None:
    closing = {"base": "USD", "rate": "0.333333"}
    before = deal("won", amount="10.00", currency="EUR", closing=closing)
    after = deal("won", amount="10.01", currency="EUR", closing=closing)
    # Exact: 0.01 x 0.333333, never rounded to cents.
    assert summary_deltas(before, after)[("company", ACME)] == {"won|USD": Decimal("0.00333333")}


def test_changes_that_leave_every_contribution_alone_touch_no_summary() -> None:
    assert summary_deltas(deal(), deal(amount="5.00", name="Renamed")) == {}
    lost = deal("lost", amount="1.00")
    assert summary_deltas(lost, {**lost, "amount": "2.00"}) == {}


def test_replaced_contacts_and_a_new_company_move_the_contribution() -> None:
    after = deal(contacts=[{"contact_id": BOB}, {"contact_id": CAT}], company_id=GLOBEX)
    assert summary_deltas(deal(), after) == {
        ("company", ACME): {"open": -1},
        ("company", GLOBEX): {"open": 1},
        ("contact", ANN): {"open": -1},
        ("contact", CAT): {"open": 1},
    }


def test_a_lost_or_deleted_deal_takes_its_contribution_away() -> None:
    won = deal("won", amount="250.50")
    assert summary_deltas(won, None)[("contact", BOB)] == {
        "won": -1,
        "won|USD": Decimal("-250.50"),
    }
    assert summary_deltas(deal(), deal("lost"))[("contact", ANN)] == {"open": -1}
    assert summary_deltas(deal("lost"), None) == {}


def test_a_deal_without_company_counts_only_for_its_contacts() -> None:
    assert set(summary_deltas(None, deal(company_id=None, contacts=[]))) == set()
    assert set(summary_deltas(None, deal(company_id=None))) == {("contact", ANN), ("contact", BOB)}


def test_totals_show_sums_with_the_currency_minor_digits_and_leave_out_nothing_won() -> None:
    item = {"open": 2, "won": 1, "won|USD": Decimal("1085.005"), "won|JPY": 0, "won|KWD": 1}
    totals = deal_totals(item).model_dump()
    assert totals == {"open": 2, "won": 1, "won_amount": {"KWD": "1.000", "USD": "1085.01"}}
    assert deal_totals(None).model_dump() == {"open": 0, "won": 0, "won_amount": {}}


# Any sequence of states: the deltas of its steps add up to the last state's contribution.
contacts = st.lists(st.sampled_from([ANN, BOB, CAT]), unique=True, max_size=3)
amounts = st.decimals(min_value=0, max_value=10**6, places=2).map(lambda d: f"{d:.2f}")
states = st.one_of(
    st.none(),
    st.builds(
        lambda status, amount, base, rate, people, company: deal(
            status,
            amount=amount,
            currency="EUR",
            contacts=[{"contact_id": c} for c in people],
            company_id=company,
            closing={"base": base, "rate": rate},
        ),
        st.sampled_from(["open", "won", "lost"]),
        amounts,
        st.sampled_from(["USD", "EUR", "JPY"]),
        st.sampled_from(["1", "0.92", "1.0833333"]),
        contacts,
        st.sampled_from([None, ACME, GLOBEX]),
    ),
)


def _add(
    total: dict[Holder, dict[str, Decimal]], deltas: Mapping[Holder, Mapping[str, Any]]
) -> None:
    for holder, adds in deltas.items():
        cell = total.setdefault(holder, {})
        for name, value in adds.items():
            cell[name] = cell.get(name, Decimal(0)) + value


@given(st.lists(states, min_size=1, max_size=8))
def test_the_steps_add_up_to_where_the_deal_ends(history: list[dict[str, Any] | None]) -> None:
    total: dict[Holder, dict[str, Decimal]] = {}
    previous: dict[str, Any] | None = None
    for state in [*history, None]:
        _add(total, summary_deltas(previous, state))
        previous = state
    # Back to nothing: every summary is where it started, to the last digit.
    assert all(v == 0 for cell in total.values() for v in cell.values())
    last = history[-1]
    _add(total, summary_deltas(None, last))
    expected = {k: v for k, v in contribution(last).items() if v != 0}
    for holder in summary_deltas(None, last):
        assert {k: v for k, v in total[holder].items() if v != 0} == expected


def test_a_month_of_cells_round_trips_exactly_and_a_full_one_is_refused() -> None:
    cells = {
        f"owner-{i}|proposal|EUR": {"n": i + 1, "a": Decimal("0.000000000001") * i}
        for i in range(2000)
    }
    packed = bookkeeping.encode_cells(cells)
    assert len(packed) < 100 * 1024  # 2,000 cells, well within an item
    assert bookkeeping.decode_cells({bookkeeping.CELLS_ATTRIBUTE: packed}) == cells
    assert bookkeeping.decode_cells(None) == {}
    noise = {f"{os.urandom(16).hex()}|s|EUR": {"n": 1, "a": Decimal(1)} for _ in range(20000)}
    with pytest.raises(bookkeeping.MonthFull):
        bookkeeping.encode_cells(noise)
