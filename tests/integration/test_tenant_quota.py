"""The per-tenant request quota (crm_core/tenant_quota.py): counted in memory, added to
the table every few requests, shared by every environment, and answered as a 429 with
Retry-After through any HTTP function."""

from __future__ import annotations

import json
import sys
from types import ModuleType
from typing import Any

import pytest

from crm_core import http, keys
from crm_core.table import Table
from crm_core.tenant_quota import TenantQuota, TenantThrottled
from tests.support.api import Api, User, template_routes
from tests.support.aws_calls import count_calls

ACME, GLOBEX = User("acme"), User("globex")


class Clock:
    def __init__(self, now: float = 1_800_000_000.2) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def admitted(quota: TenantQuota, tenant: str, n: int) -> int:
    """How many of `n` requests the quota lets in."""
    passed = 0
    for _ in range(n):
        try:
            quota.admit(tenant)
        except TenantThrottled:
            continue
        passed += 1
    return passed


def test_environments_share_a_tenants_quota_and_other_tenants_keep_theirs(table: Table) -> None:
    clock = Clock()
    one, two = (TenantQuota(table, per_second=10, batch=5, clock=clock) for _ in range(2))
    assert admitted(one, "acme", 5) == 5  # adds 5
    assert admitted(two, "acme", 5) == 5  # adds 5: 10, at the quota
    assert admitted(one, "acme", 5) == 4  # the 5th adds 5: 15, past it; refused from then
    assert admitted(one, "acme", 3) == 0
    assert admitted(two, "acme", 4) == 4  # counted in memory: two learns at its next batch
    assert admitted(two, "acme", 1) == 0
    assert admitted(one, "globex", 10) == 10
    counter = table.get(keys.tenant_requests("acme", int(clock.now)))
    assert counter is not None
    assert (counter["requests"], counter["type"]) == (20, "tenant_requests")
    assert counter["ttl"] == int(clock.now) + 120
    clock.now += 1  # a new second
    assert admitted(one, "acme", 10) == 10


def test_a_refusal_says_how_long_to_wait(table: Table) -> None:
    clock = Clock(1_800_000_000.7)
    quota = TenantQuota(table, per_second=1, batch=1, clock=clock)
    quota.admit("acme")
    with pytest.raises(TenantThrottled) as refused:
        quota.admit("acme")
    assert refused.value.retry_after == 1
    assert refused.value.status == 429


def test_a_tenant_under_a_batch_a_second_costs_no_call(table: Table) -> None:
    clock = Clock()
    quota = TenantQuota(table, per_second=100, batch=5, clock=clock)
    with count_calls(table.client) as calls:
        for _ in range(20):  # 4 a second for 5 seconds
            assert admitted(quota, "acme", 4) == 4
            clock.now += 1
        assert calls.count == 0
        assert admitted(quota, "acme", 10) == 10
        assert calls.calls == ["UpdateItem", "UpdateItem"]


def test_a_failing_counter_lets_requests_through(table: Table) -> None:
    class Broken(Table):
        def add(self, *args: Any, **kwargs: Any) -> int:
            raise RuntimeError("the table is unreachable")

    quota = TenantQuota(Broken(table.client, table.name), per_second=1, batch=1, clock=Clock())
    assert admitted(quota, "acme", 5) == 5


def test_an_http_function_answers_429_with_retry_after_past_the_quota(
    contacts_module: ModuleType, table: Table
) -> None:
    context = sys.modules["contacts_api.context"]
    quota = TenantQuota(table, per_second=3, batch=1, clock=Clock(1_800_000_000.5))
    handler = http.api_handler(
        context.app, context.logger, context.tracer, context.metrics, quota=quota
    )
    api = Api(handler, template_routes("ContactsFunction"))
    assert [api.call("GET", "/contacts", ACME).status for _ in range(3)] == [200, 200, 200]
    refused = api.call("GET", "/contacts", ACME)
    assert refused.status == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    problem = json.loads(refused.text)
    assert problem["type"].endswith("/throttled")
    assert "more than 3 requests in a second" in problem["detail"]
    assert api.call("GET", "/contacts", GLOBEX).status == 200
    # No token, no tenant: the quota is not asked (the route refuses the caller itself).
    assert api.call("GET", "/contacts", User(None)).status == 401


def test_every_http_function_takes_the_stages_quota() -> None:
    from infra.cfn import load_template

    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TENANT_REQUESTS_PER_SECOND"] == {
        "Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "TenantRequestsPerSecond"]
    }
    settings = template["Mappings"]["StageSettings"]
    per_stage = {stage: settings[stage]["TenantRequestsPerSecond"] for stage in settings}
    assert per_stage == {"dev": "20", "staging": "50", "prod": "100", "local": "200"}
