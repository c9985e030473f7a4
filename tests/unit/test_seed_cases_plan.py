"""`crm seed --cases`: the plan reaches every status, is the same on every run, and only
replies in public to a case with a contact."""

from __future__ import annotations

import random

from crm_core.cases import lifecycle
from crm_core.records.case import CaseCreate, ReplyCreate
from infra.ops.seed_cases import plan_cases

CONTACTS = ["01JCZNTACT00000000000000A1", "01JCZNTACT00000000000000A2"]


def test_every_status_is_planned_and_the_plan_repeats() -> None:
    first = plan_cases(random.Random(7), 40, CONTACTS)
    again = plan_cases(random.Random(7), 40, CONTACTS)
    assert [(p.body, p.steps) for p in first] == [(p.body, p.steps) for p in again]
    assert {p.status for p in first} == set(lifecycle.STATUSES)


def test_each_plan_is_a_valid_case_that_its_steps_can_reach() -> None:
    for plan in plan_cases(random.Random(3), 60, CONTACTS):
        CaseCreate.model_validate(plan.body)
        status = "new"
        for step in plan.steps:
            if "reply" in step:
                reply = ReplyCreate.model_validate(step["reply"])
                assert not reply.public or "contact_id" in plan.body
                moved = (
                    lifecycle.after_agent_reply(status, reply.status)
                    if reply.public
                    else reply.status or status
                )
            else:
                moved = step["patch"]["status"]
            assert moved == status or lifecycle.allowed(status, moved), (plan.index, status, moved)
            status = moved
        assert status == plan.status, plan.index
