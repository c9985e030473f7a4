"""`crm seed`'s deals, as planned before anything is sent (infra/ops/seed.py): bodies the
API takes, and histories whose every PATCH changes the deal, which a second run relies on to
find where a deal's history stands from its version."""

from __future__ import annotations

import random
from datetime import date, timedelta

from crm_core.currencies import parse_amount
from crm_core.deals.pipeline_models import default_pipeline
from crm_core.ids import new_ulid
from crm_core.records.deal import DealCreate, DealPatch
from infra.ops.seed import BASE_CURRENCY, CLOSE_WINDOW, RATES, REPS, DealPlan, plan_deals

TODAY = date(2026, 12, 7)
COMPANIES = [(new_ulid(), f"Company {n}") for n in range(4)]
PEOPLE = [new_ulid() for _ in range(6)]
CONTACTS: dict[str | None, list[str]] = {
    COMPANIES[0][0]: PEOPLE[:3],
    COMPANIES[1][0]: PEOPLE[3:4],
    None: PEOPLE[4:],
}


def plans(count: int = 400, seed: int = 7) -> list[DealPlan]:
    return plan_deals(random.Random(seed), count, TODAY, REPS, COMPANIES, CONTACTS)


def _last(plan: DealPlan, field: str) -> str:
    """The field's value once the deal's history is made."""
    values = [s[field] for s in plan.steps if field in s]
    return str(values[-1] if values else plan.body.get(field, "qualification"))


def test_the_same_seed_plans_the_same_deals() -> None:
    assert plans(50) == plans(50)
    assert plans(50) != plans(50, seed=8)


def test_every_body_and_step_is_one_the_api_takes() -> None:
    stage_ids = {s["id"] for s in default_pipeline()["stages"]}
    for plan in plans():
        created = DealCreate.model_validate(plan.body)
        assert created.currency == BASE_CURRENCY or created.currency in RATES
        parse_amount(created.amount, created.currency)
        assert created.stage_id is None or created.stage_id in stage_ids
        assert created.attributes["seed_index"] == plan.index
        for step in plan.steps:
            patch = DealPatch.model_validate(step)
            assert patch.stage_id is None or patch.stage_id in stage_ids


def test_every_step_changes_the_deal_and_a_closed_deal_closes_last() -> None:
    for plan in plans():
        state = {"stage_id": "qualification", **plan.body}
        for n, step in enumerate(plan.steps):
            assert any(state.get(k) != v for k, v in step.items()), (plan.index, step)
            if step.get("stage_id") in ("won", "lost"):
                assert n == len(plan.steps) - 1, plan.steps
            if step.get("stage_id") == "lost":
                assert step["lost_reason"]["reason"]
            state.update(step)


def test_a_pipeline_worth_looking_at() -> None:
    planned = plans()
    final = [_last(p, "stage_id") for p in planned]
    shares = {stage: final.count(stage) / len(planned) for stage in set(final)}
    assert set(shares) == {s["id"] for s in default_pipeline()["stages"]}
    assert 0.1 < shares["won"] < 0.35
    assert 0.1 < shares["lost"] < 0.3
    moved = [p for p in planned if p.steps]
    assert len(moved) > 0.6 * len(planned)
    assert any("amount" in s for p in planned for s in p.steps)
    assert any("close_date" in s for p in planned for s in p.steps)
    closes = [date.fromisoformat(_last(p, "close_date")) for p in planned]
    assert min(closes) >= TODAY + timedelta(days=CLOSE_WINDOW[0])
    assert max(closes) <= TODAY + timedelta(days=CLOSE_WINDOW[1])
    assert min(closes) < TODAY - timedelta(days=60)
    assert max(closes) > TODAY + timedelta(days=240)
    assert len({p.body["currency"] for p in planned}) == 4
    assert {p.body["owner_id"] for p in planned} == set(REPS)
    assert sum("company_id" in p.body for p in planned) > 0.8 * len(planned)
    assert sum(bool(p.body["contacts"]) for p in planned) > 0.5 * len(planned)
