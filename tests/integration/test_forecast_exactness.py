"""The forecast is exact at any moment: a random sequence of creates, moves, amount, currency,
owner and close-date changes, wins, losses, deletes, rate changes (the base currency too)
and re-weighted stages, at increasing times, and then `GET /forecast` now and `as_of` random
moments (exactly at a change included) against a brute-force recomputation from each
deal's history, the rates and the pipeline as they stood; to the cent.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core import keys
from crm_core.clock import format_iso
from crm_core.currencies import MINOR_DIGITS
from crm_core.deals.pipeline_models import default_pipeline
from tests.support.api import Api, User

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OWNERS = ("ann", "bob", "cy")
CURRENCIES = ("USD", "EUR", "JPY")
MONTHS = ("2027-01", "2027-02", "2027-03", "2027-04", "2027-05", "2027-06")
STAGES = [s["id"] for s in default_pipeline()["stages"]]
_tenants = iter(range(10**9))


class Clock:
    """The functions' clock, moved forward by the test."""

    def __init__(self) -> None:
        self.moment = START

    def advance(self, milliseconds: int) -> str:
        self.moment += timedelta(milliseconds=milliseconds)
        return self()

    def __call__(self) -> str:
        return format_iso(self.moment)


@pytest.fixture
def clock(deals_api: Api, monkeypatch: pytest.MonkeyPatch) -> Clock:
    context = sys.modules["deals_api.context"]
    fake = Clock()
    for holder in (
        context.deal_store,
        context.pipeline_store,
        context.currency_store,
        context.forecasts,
    ):
        monkeypatch.setattr(holder, "clock", fake)
    return fake


# The operations --------------------------------------------------------------------------
def amounts(currency: str) -> st.SearchStrategy[str]:
    digits = MINOR_DIGITS[currency]
    whole = st.integers(0, 10**9)
    if digits == 0:
        return whole.map(str)
    return st.tuples(whole, st.integers(0, 10**digits - 1)).map(
        lambda p: f"{p[0]}.{p[1]:0{digits}d}"
    )


def deal_money() -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(CURRENCIES).flatmap(lambda c: st.tuples(amounts(c), st.just(c)))


close_dates = st.tuples(st.sampled_from(MONTHS), st.integers(1, 28)).map(
    lambda p: f"{p[0]}-{p[1]:02d}"
)
rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=4).map(
    lambda d: f"{d.normalize():f}"
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            deal_money(),
            close_dates,
            st.sampled_from(OWNERS),
            st.sampled_from(STAGES),
        ),
        st.tuples(st.just("move"), st.integers(0, 50), st.sampled_from(STAGES)),
        st.tuples(st.just("amount"), st.integers(0, 50), deal_money()),
        st.tuples(st.just("close_date"), st.integers(0, 50), close_dates),
        st.tuples(st.just("owner"), st.integers(0, 50), st.sampled_from(OWNERS)),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("rates"), st.sampled_from(CURRENCIES), rates, rates),
        st.tuples(
            st.just("weights"),
            st.lists(st.integers(0, 100), min_size=4, max_size=4),
            st.sampled_from(["pipeline", "best_case", "commit", "omitted", None]),
        ),
    ),
    min_size=1,
    max_size=18,
)


@dataclass
class World:
    """What the test did, to recompute from: rate and pipeline versions with their times."""

    api: Api
    user: User
    clock: Clock
    deals: list[str] = field(default_factory=list)
    # Every deal ever created, deleted ones too.
    created: list[str] = field(default_factory=list)
    rates: list[tuple[str, str, dict[str, Decimal]]] = field(default_factory=list)
    stages: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    moments: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.moments.append(self.clock.advance(self.step))
        reply = self.api.call(method, path, self.user, body)
        assert reply.status < 500, reply.text
        return reply

    step: int = 1000


def lost_reason(stage: str) -> dict[str, Any]:
    return {"lost_reason": {"reason": "price"}} if stage == "lost" else {}


def run(world: World, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    live = world.deals
    if kind == "create":
        _, (amount, currency), close_date, owner, stage = operation
        body = {
            "name": "d",
            "amount": amount,
            "currency": currency,
            "close_date": close_date,
            "owner_id": owner,
            "stage_id": stage,
            **lost_reason(stage),
        }
        reply = world.call("POST", "/deals", body)
        if reply.status == 201:
            live.append(reply.json["id"])
            world.created.append(reply.json["id"])
    elif kind == "rates":
        _, base, first, second = operation
        others = [c for c in CURRENCIES if c != base]
        body = {"base": base, "rates": {others[0]: first, others[1]: second}}
        reply = world.call("PUT", "/settings/currencies", body)
        assert reply.status == 200, reply.text
        world.rates.append(
            (reply.json["updated_at"], base, {c: Decimal(r) for c, r in body["rates"].items()})
        )
    elif kind == "weights":
        _, weights, category = operation
        stages = default_pipeline()["stages"]
        for stage, weight in zip(stages[:4], weights, strict=True):
            stage["probability"] = weight
            if category is not None:
                stage["forecast_category"] = category
        reply = world.call("PATCH", "/pipelines/default", {"stages": stages})
        assert reply.status == 200, reply.text
        world.stages.append((reply.json["updated_at"], reply.json["stages"]))
    elif live:
        deal_id = live[operation[1] % len(live)]
        if kind == "delete":
            assert world.call("DELETE", f"/deals/{deal_id}").status == 204
            live.remove(deal_id)
            return
        body = {
            "move": lambda: {"stage_id": operation[2], **lost_reason(operation[2])},
            "amount": lambda: {"amount": operation[2][0], "currency": operation[2][1]},
            "close_date": lambda: {"close_date": operation[2]},
            "owner": lambda: {"owner_id": operation[2]},
        }[kind]()
        reply = world.call("PATCH", f"/deals/{deal_id}", body)
        # A currency without a rate yet, or a lost deal's new stage: refused, nothing changes.
        assert reply.status in (200, 422), reply.text


# The brute force -------------------------------------------------------------------------
def history(table: Any, tenant: str, deal_id: str) -> list[dict[str, Any]]:
    partition = keys.deal_partition(tenant, deal_id)
    entries = table.query_all(None, partition, sort_below="I", consistent=True)
    return sorted(entries, key=lambda e: (e["at"], e["version"]))


def at(versions: list[tuple[str, Any]], moment: str, default: Any) -> Any:
    found = [v for t, v in versions if t <= moment]
    return found[-1] if found else default


def recompute(world: World, table: Any, tenant: str, moment: str) -> dict[str, Any]:
    """The forecast of `moment`, from each deal's history alone."""
    rate_versions = [(t, (b, r)) for t, b, r in world.rates]
    base, rates = at(rate_versions, moment, ("USD", {}))
    stages = {s["id"]: s for s in at(world.stages, moment, _default_stages())}
    periods = {m: _empty() for m in MONTHS}
    total = _empty()
    for deal_id in world.created:
        state = replay(history(table, tenant, deal_id), moment, rate_versions)
        if state is None:
            continue
        for sums in (periods[state["close_date"][:7]], total):
            add(sums, state, stages[state["stage_id"]], base, rates)
    return {"periods": {m: shown(s, base) for m, s in periods.items()}, "total": shown(total, base)}


def _default_stages() -> list[dict[str, Any]]:
    from crm_core.deals.pipeline_models import PipelineBody, stored_stages

    return stored_stages(PipelineBody.model_validate(default_pipeline()).stages)


def replay(
    entries: list[dict[str, Any]], moment: str, rate_versions: list[tuple[str, Any]]
) -> dict[str, Any] | None:
    state: dict[str, Any] | None = None
    for entry in entries:
        if entry["at"] > moment:
            break
        if entry["action"] == "deleted":
            return None
        before = dict(state or {})
        state = dict(before)
        for change in entry["changes"]:
            state[change["field"]] = change["value"]
        if state["status"] != "open" and (
            before.get("status") != state["status"] or before.get("currency") != state["currency"]
        ):
            base, rates = at(rate_versions, entry["at"], ("USD", {}))
            rate = Decimal(1) if state["currency"] == base else rates[state["currency"]]
            state["closing"] = (base, rate)
    return state


def _empty() -> dict[str, Any]:
    return {
        "count": 0,
        "amount": Decimal(0),
        "weighted": Decimal(0),
        "won_count": 0,
        "won": Decimal(0),
        "lost_count": 0,
        "categories": {},
        "owners": {},
    }


def add(
    sums: dict[str, Any],
    deal: dict[str, Any],
    stage: dict[str, Any],
    base: str,
    rates: dict[str, Decimal],
) -> None:
    def rate(currency: str) -> Decimal:
        return Decimal(1) if currency == base else rates[currency]

    with localcontext() as context:
        context.prec = 60
        owner = sums["owners"].setdefault(deal["owner_id"], _empty())
        category = stage["forecast_category"]
        if deal["status"] == "open":
            amount = Decimal(deal["amount"]) * rate(deal["currency"])
            weighted = amount * stage["probability"] / 100
        else:
            closing_base, closing_rate = deal["closing"]
            amount = Decimal(deal["amount"]) * closing_rate * rate(closing_base)
            weighted = amount if deal["status"] == "won" else Decimal(0)
        for target in (sums, owner):
            entry = target["categories"].setdefault(category, [0, Decimal(0), Decimal(0)])
            entry[0] += 1
            entry[1] += amount
            entry[2] += weighted
            if deal["status"] == "won":
                target["won_count"] += 1
                target["won"] += amount
            elif deal["status"] == "lost":
                target["lost_count"] += 1
            elif category != "omitted":
                target["count"] += 1
                target["amount"] += amount
                target["weighted"] += weighted


def money(amount: Decimal, base: str) -> str:
    quantum = Decimal(1).scaleb(-MINOR_DIGITS[base])
    return f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):f}"


def shown(sums: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "count": sums["count"],
        "amount": money(sums["amount"], base),
        "weighted_amount": money(sums["weighted"], base),
        "won_count": sums["won_count"],
        "won_amount": money(sums["won"], base),
        "lost_count": sums["lost_count"],
        "categories": {
            c: [n, money(a, base), money(w, base)]
            for c, (n, a, w) in sums["categories"].items()
            if n
        },
        "owners": {
            o: [
                s["count"],
                money(s["amount"], base),
                money(s["weighted"], base),
                s["won_count"],
                money(s["won"], base),
            ]
            for o, s in sorted(sums["owners"].items())
        },
    }


def answered(period: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": period["count"],
        "amount": period["amount"],
        "weighted_amount": period["weighted_amount"],
        "won_count": period["won_count"],
        "won_amount": period["won_amount"],
        "lost_count": period["lost_count"],
        "categories": {
            c: [f["count"], f["amount"], f["weighted_amount"]]
            for c, f in period["categories"].items()
            if f["count"]
        },
        "owners": {
            o["owner_id"]: [
                o["count"],
                o["amount"],
                o["weighted_amount"],
                o["won_count"],
                o["won_amount"],
            ]
            for o in period["owners"]
        },
    }


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations, st.lists(st.floats(0, 1), min_size=1, max_size=4), st.integers(1, 90_000))
def test_the_forecast_now_and_as_of_any_moment_is_the_history_recomputed(
    deals_api: Api, table: Any, clock: Clock, ops: list[Any], picks: list[float], step: int
) -> None:
    tenant = f"fx{next(_tenants)}"
    user = User(tenant, ("admin",))
    world = World(deals_api, user, clock, step=step)
    run(world, ("rates", "USD", "0.92", "0.0067"))
    for operation in ops:
        run(world, operation)
    clock.advance(step)
    # Now, exactly at changes, and a millisecond before them.
    changes = world.moments or [clock()]
    picked = [changes[int(p * (len(changes) - 1))] for p in picks]
    before = [format_iso(datetime.fromisoformat(m) - timedelta(milliseconds=1)) for m in picked]
    moments = [None, *picked, *before[:1]]
    for moment in moments:
        query = {"from": MONTHS[0], "to": MONTHS[-1]}
        if moment is not None:
            query["as_of"] = moment
        reply = deals_api.call("GET", "/forecast", user, query=query)
        assert reply.status == 200, reply.text
        expected = recompute(world, table, tenant, moment or clock())
        got = {p["period"]: answered(p) for p in reply.json["periods"]}
        assert got == expected["periods"], moment
        assert answered(reply.json["total"]) == expected["total"], moment
