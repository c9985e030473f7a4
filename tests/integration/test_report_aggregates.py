"""The report aggregator: a random stream of activity events, with duplicates, replays and
any order, leaves exactly the aggregates a brute-force recount of the activities' final
states gives, in every granularity."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.clock import format_iso
from crm_core.events.activities import ActivityFacts
from crm_core.ids import new_ulid
from crm_core.reports.activities_report import REPORT, SOURCE_KIND, activity_contribution
from crm_core.reports.aggregates import Change, ReportAggregates
from crm_core.reports.contributions import Bucket
from crm_core.reports.periods import GRANULARITIES
from crm_core.table import Table

ZONE = ZoneInfo("America/New_York")
START = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)  # a year, a quarter and a week change near
_clock = itertools.count()


def facts(activity_id: str, state: dict[str, Any]) -> ActivityFacts:
    return ActivityFacts.model_validate(
        {
            "id": activity_id,
            "contact_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "type": state["type"],
            "occurred_at": format_iso(START + timedelta(hours=state["hour"])),
            "created_by": state["author"],
            "assignee_id": state["assignee"],
        }
    )


states = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["call", "email", "meeting", "task"]),
        "hour": st.integers(min_value=-30, max_value=30),  # both sides of midnight there
        "author": st.sampled_from(["ann", "bob"]),
        "assignee": st.sampled_from([None, None, "cyd"]),
    }
)
histories = st.lists(
    st.tuples(st.lists(states, min_size=1, max_size=4), st.booleans()), min_size=1, max_size=6
)


def recount(finals: dict[str, ActivityFacts | None]) -> Counter[tuple[str, str, tuple[Any, ...]]]:
    counted: Counter[tuple[str, str, tuple[Any, ...]]] = Counter()
    for activity in finals.values():
        if activity is None:
            continue
        for bucket, counters in activity_contribution(activity, ZONE).items():
            counted[(bucket.granularity, bucket.period, bucket.dims)] += int(counters["n"])
    return counted


def stored(aggregates: ReportAggregates, tenant: str) -> Counter[tuple[str, str, tuple[Any, ...]]]:
    found: Counter[tuple[str, str, tuple[Any, ...]]] = Counter()
    for granularity in GRANULARITIES:
        for item in aggregates.buckets(tenant, REPORT, granularity, "0000", "9999"):
            dims = (("owner_id", item["dims"]["owner_id"]), ("type", item["dims"]["type"]))
            if item["n"]:
                found[(granularity, item["period"], dims)] += int(item["n"])
    return found


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories, st.randoms(use_true_random=False))
def test_any_order_and_any_repeats_give_the_recount(
    table: Table, history: list[tuple[list[dict[str, Any]], bool]], rng: random.Random
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    aggregates = ReportAggregates(table)
    events: list[tuple[str, Change, ActivityFacts | None]] = []
    finals: dict[str, ActivityFacts | None] = {}
    for changes, deleted in history:
        activity_id = new_ulid()
        for state in changes:
            at = format_iso(START + timedelta(milliseconds=next(_clock)))
            events.append((activity_id, Change(at, uuid.uuid4().hex), facts(activity_id, state)))
            finals[activity_id] = facts(activity_id, state)
        if deleted:
            at = format_iso(START + timedelta(milliseconds=next(_clock)))
            events.append((activity_id, Change(at, uuid.uuid4().hex), None))
            finals[activity_id] = None
    delivered = events + rng.sample(events, k=len(events) // 2)  # duplicates and replays
    rng.shuffle(delivered)
    for activity_id, change, activity in delivered:
        made = None if activity is None else activity_contribution(activity, ZONE)
        aggregates.apply(tenant, SOURCE_KIND, activity_id, change, made)
    assert stored(aggregates, tenant) == recount(finals)


def test_a_duplicate_or_older_change_is_stale(table: Table) -> None:
    aggregates = ReportAggregates(table)
    activity = facts(new_ulid(), {"type": "call", "hour": 0, "author": "ann", "assignee": None})
    made = activity_contribution(activity, ZONE)
    newer, older = Change("2026-12-07T10:00:00.002Z", "b"), Change("2026-12-07T10:00:00.001Z", "a")
    assert aggregates.apply("acme", SOURCE_KIND, activity.id, newer, made) == "applied"
    assert aggregates.apply("acme", SOURCE_KIND, activity.id, newer, made) == "stale"
    assert aggregates.apply("acme", SOURCE_KIND, activity.id, older, None) == "stale"
    assert sum(stored(aggregates, "acme").values()) == len(GRANULARITIES)


def test_a_moved_activity_leaves_one_bucket_for_another(table: Table) -> None:
    aggregates = ReportAggregates(table)
    activity_id = new_ulid()
    before = facts(activity_id, {"type": "call", "hour": 0, "author": "ann", "assignee": None})
    after = facts(activity_id, {"type": "call", "hour": 0, "author": "ann", "assignee": "cyd"})
    aggregates.apply(
        "acme", SOURCE_KIND, activity_id, Change("1", "a"), activity_contribution(before, ZONE)
    )
    aggregates.apply(
        "acme", SOURCE_KIND, activity_id, Change("2", "b"), activity_contribution(after, ZONE)
    )
    day = list(aggregates.buckets("acme", REPORT, "day", "2026-12-31", "2026-12-31"))
    assert {item["dims"]["owner_id"]: item["n"] for item in day} == {"ann": 0, "cyd": 1}
    bucket = Bucket(REPORT, "day", "2026-12-31", (("owner_id", "cyd"), ("type", "call")))
    assert bucket in activity_contribution(after, ZONE)
