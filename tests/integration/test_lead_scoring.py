"""lead_scoring: each event scores its contact once, in one read and one write, whatever is
delivered twice, at once, out of order or long after; LeadQualified once per crossing, and
a stage moved forward only when no person chose it meanwhile.

Each test changes contacts and activities through their stores (as the functions do), takes
the events those changes wrote to the outbox, and hands them to the function's handler as
EventBridge delivers them.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.dynamo import Item, key_attrs
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.records.contact import ContactCreate
from crm_core.scores.decay import DAY
from crm_core.scores.state import ScoreState
from crm_core.scoring.explain import CHANGES_SHOWN, explain
from crm_core.scoring.models import DEFAULT_MODEL
from crm_core.table import Table
from tests.support.activities import Stores
from tests.support.api import Api, LambdaContext, User
from tests.support.aws_calls import count_calls
from tests.support.events import delivered, redelivered
from tests.support.faults import Meddling
from tests.support.lambda_pool import LambdaPool, deliver, lambda_pool

if TYPE_CHECKING:
    # Not imported when a worker process loads this module: conftest resets the endpoint.
    from tests.conftest import ConsumerFunction

TENANT = "acme"
ADMIN = User(TENANT, ("admin",), sub="admin-1")
VIEWER = User(TENANT, ("viewer",), sub="viewer-1")
HALF_LIFE = float(DEFAULT_MODEL["half_life_days"])
# Points are compared at a moment a little after they were earned: 30-day decay over a few
# seconds is far below this.
CLOSE = 0.01
A_LEAD_ID, A_SOURCE_ID = new_ulid(), new_ulid()

# One activity of each kind the default model has a view on: (type, fields).
KINDS: dict[str, tuple[ActivityType, dict[str, Any]]] = {
    "meeting_held": (
        ActivityType.MEETING,
        {
            "starts_at": "2026-11-20T10:00:00Z",
            "ends_at": "2026-11-20T11:00:00Z",
            "outcome": "completed",
        },
    ),
    "meeting_booked": (
        ActivityType.MEETING,
        {"starts_at": "2026-12-20T10:00:00Z", "ends_at": "2026-12-20T11:00:00Z"},
    ),
    "call_connected": (ActivityType.CALL, {"direction": "outbound", "outcome": "connected"}),
    "call_no_answer": (ActivityType.CALL, {"direction": "outbound", "outcome": "no_answer"}),
    "email_in": (
        ActivityType.EMAIL,
        {
            "direction": "inbound",
            "subject": "Re: pricing",
            "from": "ada@example.com",
            "to": ["sales@acme.example"],
        },
    ),
    "email_out": (
        ActivityType.EMAIL,
        {
            "direction": "outbound",
            "subject": "Pricing",
            "from": "sales@acme.example",
            "to": ["ada@example.com"],
        },
    ),
    "form": (ActivityType.FORM_SUBMISSION, {"lead_id": A_LEAD_ID, "source_id": A_SOURCE_ID}),
    "opened": (ActivityType.EMAIL_OPENED, {"subject": "Spring offer"}),
    "clicked": (ActivityType.EMAIL_CLICKED, {"url": "https://acme.example/blog/spring"}),
    "pricing": (ActivityType.EMAIL_CLICKED, {"url": "https://acme.example/PRICING?plan=pro"}),
    "bounced": (ActivityType.EMAIL_BOUNCED, {"bounce_type": "permanent"}),
    "unsubscribed": (ActivityType.UNSUBSCRIBED, {"method": "one_click"}),
    "note": (ActivityType.NOTE, {"body": "Prefers mornings."}),
    "task_done": (
        ActivityType.TASK,
        {"subject": "Send deck", "due_at": "2026-11-01T09:00:00Z", "status": "completed"},
    ),
}


@pytest.fixture
def function(lead_scoring_module: ConsumerFunction, table: Table) -> ConsumerFunction:
    return lead_scoring_module


@pytest.fixture
def crm(table: Table, function: ConsumerFunction) -> Crm:
    return Crm(table, function)


class Crm(Stores):
    """The test table's contacts and activities, the events their changes wrote, and the
    lead_scoring function they are delivered to."""

    def __init__(self, table: Table, function: ConsumerFunction) -> None:
        super().__init__(table)
        self.function = function

    # Changes, and their events delivered ----------------------------------------------------
    def person(self, tenant: str = TENANT, *, scored: bool = True, **fields: Any) -> str:
        """A new contact; its ContactCreated delivered (`scored`), so that it is scored with
        the current model from the start."""
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        contact = self.contacts.create(tenant, ContactCreate(email=email, **fields), self.origin)
        if scored:
            self.deliver(delivered(self.outbox(contact.id, "ContactCreated", tenant)[-1]))
        return contact.id

    def log(
        self, contact_id: str, kind: str, at: datetime | None = None, tenant: str = TENANT
    ) -> Item:
        """An activity of `kind` (KINDS) logged on the contact, its event not delivered."""
        activity_type, fields = KINDS[kind]
        stored = validate_fields(activity_type, copy.deepcopy(fields))
        return self.activities.log(tenant, contact_id, activity_type, stored, at, self.origin)

    def event_of(self, activity: Item) -> dict[str, Any]:
        """The ActivityLogged of `activity`, as a rule delivers it."""
        tenant, contact_id = activity["tenant_id"], activity["contact_id"]
        for outbox in self.outbox(contact_id, "ActivityLogged", tenant):
            if json.loads(outbox["detail"])["data"]["activity"]["id"] == activity["id"]:
                return delivered(outbox)
        raise AssertionError(f"no ActivityLogged for {activity['id']}")

    def score(
        self, contact_id: str, kind: str, at: datetime | None = None, tenant: str = TENANT
    ) -> Any:
        """Log an activity and deliver its event: the handler's result."""
        return self.deliver(self.event_of(self.log(contact_id, kind, at, tenant)))

    def deliver(self, event: dict[str, Any]) -> Any:
        return self.function.handler(event, LambdaContext())

    def forget_deliveries(self, tenant: str = TENANT) -> None:
        """Delete the consumer's idempotency records, as their TTL does after 7 days (an
        archive replay then reaches the handler again)."""
        partition = keys.idempotency_partition(tenant)
        for item in self.table.query_all(None, partition, sort_below="\U0010ffff"):
            key = key_attrs({"PK": item["PK"], "SK": item["SK"]})
            self.table.client.delete_item(TableName=self.table.name, Key=key)

    # What is in the table ----------------------------------------------------------------
    def partition(self, contact_id: str, prefix: str, tenant: str = TENANT) -> list[Item]:
        listing = ListQuery("partition", keys.contact(tenant, contact_id)["PK"])
        found: list[Item] = []
        cursor = None
        while True:
            page = self.table.query(listing, 100, cursor, newest_first=False, sort_prefix=prefix)
            found += page.items
            if not page.next_cursor:
                return found
            cursor = page.next_cursor

    def outbox(self, contact_id: str, detail_type: str, tenant: str = TENANT) -> list[Item]:
        """The contact's outbox items of `detail_type`, oldest first."""
        items = self.partition(contact_id, keys.OUTBOX_PREFIX, tenant)
        return [i for i in items if i["detail_type"] == detail_type]

    def events(self, contact_id: str, detail_type: str, tenant: str = TENANT) -> list[Any]:
        """The `data` of each `detail_type` event in the contact's outbox, oldest first."""
        return [
            json.loads(i["detail"])["data"] for i in self.outbox(contact_id, detail_type, tenant)
        ]

    def changes(self, contact_id: str, tenant: str = TENANT) -> list[Item]:
        return self.partition(contact_id, keys.SCORE_CHANGE_PREFIX, tenant)

    def item(self, contact_id: str, tenant: str = TENANT) -> Item:
        item: Item | None = self.table.get(keys.contact(tenant, contact_id))
        assert item is not None
        return item

    def state(self, contact_id: str, tenant: str = TENANT) -> ScoreState:
        return ScoreState.of(self.item(contact_id, tenant))

    def engagement(self, contact_id: str) -> float:
        return self.state(contact_id).engagement_at(time.time())

    def stage(self, contact_id: str) -> str:
        return str(self.item(contact_id)["lifecycle_stage"])


def decayed(points: float, at: datetime, now: float, half_life_days: float = HALF_LIFE) -> float:
    """`points` earned at `at`, worth this much at `now` (epoch seconds)."""
    return points * 2 ** (-(now - at.timestamp()) / (half_life_days * DAY))


def days_ago(days: float, hour: int = 9) -> datetime:
    """A moment `days` before today, at `hour` UTC (well inside that day)."""
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def put_model(scoring_api: Api, **changes: Any) -> int:
    """A new version of the tenant's model: the default one with `changes`; its version."""
    body = {**copy.deepcopy(DEFAULT_MODEL), **changes}
    reply = scoring_api.call("PUT", "/scoring/model", ADMIN, body)
    assert reply.status == 200, reply.text
    version: int = reply.json["version"]
    return version


# The default model's points ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "points", "rules"),
    [
        ("meeting_held", 25, {"meeting-held": 25}),
        ("meeting_booked", 15, {"meeting-booked": 15}),
        ("call_connected", 10, {"call-connected": 10}),
        ("email_in", 8, {"email-replied": 8}),
        ("form", 15, {"form-submitted": 15}),
        ("opened", 1, {"email-opened": 1}),
        ("clicked", 5, {"email-clicked": 5}),
        ("pricing", 15, {"email-clicked": 5, "pricing-clicked": 10}),
        ("bounced", -10, {"email-bounced": -10}),
        ("unsubscribed", -25, {"unsubscribed": -25}),
    ],
)
def test_each_activity_earns_its_rules_points(
    crm: Crm, kind: str, points: int, rules: dict[str, int]
) -> None:
    contact_id = crm.person()
    activity = crm.log(contact_id, kind)
    event = crm.event_of(activity)

    result = crm.deliver(event)

    assert result["changed"] is True
    assert (result["old_score"], result["new_score"]) == (0, points)
    assert sorted(result["rules"]) == sorted(rules)
    assert crm.engagement(contact_id) == pytest.approx(points, abs=CLOSE)
    state = crm.state(contact_id)
    assert (state.fit, state.model_version, state.half_life_days) == (0, 0, HALF_LIFE)
    assert {k: round(v, 2) for k, v in state.rule_points_at(time.time()).items()} == rules
    (changed,) = crm.events(contact_id, "LeadScoreChanged")
    assert (changed["old_score"], changed["new_score"]) == (0, points)
    assert (changed["fit"], changed["engagement"], changed["model_version"]) == (0, points, 0)
    assert {r["rule_id"]: r["points"] for r in changed["reasons"]} == rules
    assert changed["cause"] == {
        "detail_type": "ActivityLogged",
        "event_id": event["detail"]["metadata"]["event_id"],
        "activity_id": activity["id"],
        "activity_type": activity["activity_type"],
    }
    (record,) = crm.changes(contact_id)
    assert record["SK"] == f"SCORE#{event['detail']['metadata']['event_id']}"
    assert crm.events(contact_id, "LeadQualified") == []


@pytest.mark.parametrize("kind", ["call_no_answer", "email_out", "note", "task_done"])
def test_an_activity_no_rule_counts_changes_nothing(crm: Crm, kind: str) -> None:
    contact_id = crm.person()
    before = crm.item(contact_id)

    assert crm.score(contact_id, kind) == {"changed": False}

    after = crm.item(contact_id)
    assert after["scoring"] == before["scoring"]
    assert crm.events(contact_id, "LeadScoreChanged") == []
    assert crm.changes(contact_id) == []


def test_points_count_from_when_the_activity_happened(crm: Crm) -> None:
    contact_id = crm.person()
    a_half_life_ago = datetime.now(UTC) - timedelta(days=HALF_LIFE)

    result = crm.score(contact_id, "meeting_held", a_half_life_ago)

    assert result["new_score"] == pytest.approx(12.5, abs=CLOSE)
    assert crm.engagement(contact_id) == pytest.approx(12.5, abs=CLOSE)


def test_an_activity_dated_in_the_future_counts_from_now(crm: Crm) -> None:
    contact_id = crm.person()
    # A meeting logged ahead of its time (the store takes any time; the API refuses most).
    crm.score(contact_id, "meeting_held", datetime.now(UTC) + timedelta(days=HALF_LIFE))

    # Not 50 (25 doubled by a half-life ahead): 25, as if it happened now.
    assert crm.engagement(contact_id) == pytest.approx(25, abs=CLOSE)


# Caps ---------------------------------------------------------------------------------------
def test_email_opens_count_at_most_3_a_day_each_day(crm: Crm) -> None:
    contact_id = crm.person()
    first_day, second_day = days_ago(3), days_ago(2)
    results = [crm.score(contact_id, "opened", first_day + timedelta(minutes=n)) for n in range(5)]
    results += [
        crm.score(contact_id, "opened", second_day + timedelta(minutes=n)) for n in range(4)
    ]

    assert [r["changed"] for r in results] == [True] * 3 + [False] * 2 + [True] * 3 + [False]
    now = time.time()
    expected = sum(decayed(1, first_day, now) for _ in range(3))
    expected += sum(decayed(1, second_day, now) for _ in range(3))
    assert crm.engagement(contact_id) == pytest.approx(expected, abs=CLOSE)
    assert crm.state(contact_id).caps == {
        "email-opened": {
            "total": 6,
            "days": {
                first_day.strftime("%Y-%m-%d"): 3,
                second_day.strftime("%Y-%m-%d"): 3,
            },
        }
    }
    assert len(crm.events(contact_id, "LeadScoreChanged")) == 6
    assert len(crm.changes(contact_id)) == 6


def test_a_pricing_click_counts_both_rules_each_within_its_own_cap(crm: Crm) -> None:
    contact_id = crm.person()
    day = days_ago(1)
    results = [crm.score(contact_id, "pricing", day + timedelta(minutes=n)) for n in range(4)]

    # email-clicked: 5 a click, at most 15 a day; pricing-clicked: 10, at most 10 a day.
    assert [sorted(r["rules"]) for r in results[:3]] == [
        ["email-clicked", "pricing-clicked"],
        ["email-clicked"],
        ["email-clicked"],
    ]
    assert results[3] == {"changed": False}
    reasons = [c["reasons"] for c in crm.events(contact_id, "LeadScoreChanged")]
    assert reasons == [
        [{"rule_id": "email-clicked", "points": 5}, {"rule_id": "pricing-clicked", "points": 10}],
        [{"rule_id": "email-clicked", "points": 5}],
        [{"rule_id": "email-clicked", "points": 5}],
    ]
    caps = crm.state(contact_id).caps
    assert caps["email-clicked"]["total"] == 15
    assert caps["pricing-clicked"]["total"] == 10


def test_a_cap_in_all_bounds_a_rule_across_days(crm: Crm, scoring_api: Api) -> None:
    put_model(
        scoring_api,
        behaviour=[
            {
                "id": "opens",
                "activity_type": "email_opened",
                "points": 2,
                "cap_per_day": 3,
                "cap_total": 5,
            }
        ],
    )
    contact_id = crm.person()
    assert crm.state(contact_id).model_version == 1
    first_day, second_day = days_ago(3), days_ago(2)

    gains = []
    for day, opens in ((first_day, 3), (second_day, 3)):
        for n in range(opens):
            result = crm.score(contact_id, "opened", day + timedelta(minutes=n))
            gains.append(
                round(result["new_score"] - result["old_score"]) if result["changed"] else 0
            )

    # Day one: 2, then the last point of the day's 3; day two: 2 more reach the 5 in all.
    assert gains == [2, 1, 0, 2, 0, 0]
    assert crm.state(contact_id).caps["opens"]["total"] == 5
    now = time.time()
    expected = decayed(3, first_day, now) + decayed(2, second_day, now)
    assert crm.engagement(contact_id) == pytest.approx(expected, abs=CLOSE)
    reasons = [c["reasons"] for c in crm.events(contact_id, "LeadScoreChanged")]
    assert reasons == [
        [{"rule_id": "opens", "points": 2}],
        [{"rule_id": "opens", "points": 1}],
        [{"rule_id": "opens", "points": 2}],
    ]


# Exactly once --------------------------------------------------------------------------------
def test_the_same_event_twice_and_after_its_idempotency_record_expired_counts_once(
    crm: Crm,
) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "form")
    crm.score(contact_id, "email_in")
    event = crm.event_of(crm.log(contact_id, "meeting_held"))  # 15 + 8 + 25: crosses mql

    first = crm.deliver(event)
    again = crm.deliver(redelivered(event))
    crm.forget_deliveries()
    # An archive replay, past the consumer's records: only the change record stops it.
    replay = crm.deliver(redelivered(event))

    assert first["changed"] is True
    assert again == first
    assert replay == {"changed": False}
    assert crm.engagement(contact_id) == pytest.approx(48, abs=CLOSE)
    assert len(crm.events(contact_id, "LeadScoreChanged")) == 3
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert qualified["threshold"] == "mql"
    assert crm.stage(contact_id) == "mql"
    assert len(crm.changes(contact_id)) == 3


def test_a_replayed_capped_event_is_not_counted_again_either(crm: Crm) -> None:
    contact_id = crm.person()
    day = days_ago(1)
    event = crm.event_of(crm.log(contact_id, "opened", day))
    crm.deliver(event)
    crm.score(contact_id, "opened", day + timedelta(minutes=1))

    crm.forget_deliveries()
    assert crm.deliver(redelivered(event)) == {"changed": False}

    assert crm.state(contact_id).caps["email-opened"]["total"] == 2
    assert len(crm.events(contact_id, "LeadScoreChanged")) == 2


# Concurrency: one process per Lambda environment (docs/decisions.md, 17) ----------------------
@pytest.fixture(scope="module")
def pool(lead_scoring_module: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("lead_scoring") as running:
        yield running


def test_events_of_one_contact_at_once_lose_no_points(crm: Crm, pool: LambdaPool) -> None:
    contact_id = crm.person()
    kinds = {
        "meeting_held": 25,
        "meeting_booked": 15,
        "call_connected": 10,
        "email_in": 8,
        "form": 15,
        "clicked": 5,
    }
    events = [crm.event_of(crm.log(contact_id, kind)) for kind in kinds]
    barrier = pool.manager.Barrier(len(events))

    futures = [pool.executor.submit(deliver, event, barrier) for event in events]
    results = [json.loads(f.result(timeout=120)) for f in futures]

    assert all(r["changed"] for r in results)
    total = sum(kinds.values())  # 78: past mql (40), short of sql (80)
    assert crm.engagement(contact_id) == pytest.approx(total, abs=CLOSE)
    changes = sorted(crm.events(contact_id, "LeadScoreChanged"), key=lambda c: c["new_score"])
    assert len(changes) == len(kinds)
    # One after the other: each change starts where the one before it ended.
    assert changes[0]["old_score"] == 0
    for before, after in itertools.pairwise(changes):
        assert after["old_score"] == pytest.approx(before["new_score"], abs=CLOSE)
    assert changes[-1]["new_score"] == pytest.approx(total, abs=CLOSE)
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert (qualified["threshold"], qualified["lifecycle_stage_after"]) == ("mql", "mql")
    assert crm.stage(contact_id) == "mql"
    assert len(crm.changes(contact_id)) == len(kinds)


def test_a_persons_edit_between_the_read_and_the_write_is_kept(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact_id = crm.person()
    event = crm.event_of(crm.log(contact_id, "meeting_held"))

    def edit() -> None:
        crm.contacts.update(TENANT, contact_id, {"first_name": "Augusta"}, None, crm.origin)

    monkeypatch.setattr(
        function.context.table, "client", Meddling(function.context.table.client, edit)
    )
    result = crm.deliver(event)

    assert result["changed"] is True
    item = crm.item(contact_id)
    assert item["first_name"] == "Augusta"
    assert crm.engagement(contact_id) == pytest.approx(25, abs=CLOSE)
    assert len(crm.events(contact_id, "LeadScoreChanged")) == 1


# Qualification and stages ------------------------------------------------------------------------
def test_crossing_mql_qualifies_once_and_moves_a_lead_to_mql(crm: Crm) -> None:
    contact_id = crm.person()

    below = [crm.score(contact_id, kind) for kind in ("meeting_held", "email_in")]  # 33
    across = crm.score(contact_id, "form")  # 48
    above = [crm.score(contact_id, kind) for kind in ("call_connected", "meeting_booked")]  # 73

    assert [r["qualified"] for r in below] == [None, None]
    assert (across["qualified"], across["lifecycle_stage"]) == ("mql", "mql")
    assert [r["qualified"] for r in above] == [None, None]
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert qualified == {
        "contact_id": contact_id,
        "threshold": "mql",
        "threshold_score": 40,
        "score": pytest.approx(48, abs=CLOSE),
        "model_version": 0,
        "lifecycle_stage_before": "lead",
        "lifecycle_stage_after": "mql",
    }
    item = crm.item(contact_id)
    assert item["lifecycle_stage"] == "mql"
    # A move by scoring is not a person's choice, and is a new version of the contact.
    assert "stage_changed_at" not in item
    assert item["version"] == 2
    contact = crm.contacts.get(TENANT, contact_id)
    assert contact.score == pytest.approx(73, abs=CLOSE)
    # The change record says where the crossing moved it.
    staged = [c for c in crm.changes(contact_id) if c.get("lifecycle_stage")]
    assert [c["lifecycle_stage"] for c in staged] == ["mql"]


def test_points_that_add_up_to_the_threshold_reach_it(crm: Crm) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "form")

    # 15 + 25, earned moments apart: a shade under 40 by now, shown (and counted) as 40.
    result = crm.score(contact_id, "meeting_held")

    assert result["new_score"] == 40
    assert (result["qualified"], result["lifecycle_stage"]) == ("mql", "mql")
    assert len(crm.events(contact_id, "LeadQualified")) == 1


def test_a_jump_across_both_thresholds_qualifies_once_for_sql(crm: Crm, scoring_api: Api) -> None:
    put_model(
        scoring_api,
        behaviour=[
            {
                "id": "meeting-held",
                "activity_type": "meeting",
                "conditions": {"outcome": "completed"},
                "points": 90,
            }
        ],
    )
    contact_id = crm.person()

    result = crm.score(contact_id, "meeting_held")

    assert (result["qualified"], result["lifecycle_stage"]) == ("sql", "sql")
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert (qualified["threshold"], qualified["threshold_score"]) == ("sql", 80)
    assert (qualified["lifecycle_stage_before"], qualified["lifecycle_stage_after"]) == (
        "lead",
        "sql",
    )
    assert qualified["model_version"] == 1
    assert crm.stage(contact_id) == "sql"


@pytest.mark.parametrize(
    ("stage", "after"),
    [
        ("subscriber", "mql"),
        ("lead", "mql"),
        ("mql", "mql"),
        ("sql", "sql"),
        ("opportunity", "opportunity"),
        ("customer", "customer"),
        ("evangelist", "evangelist"),
        ("other", "other"),
    ],
)
def test_scoring_moves_a_stage_forward_only_from_subscriber_lead_or_mql(
    crm: Crm, stage: str, after: str
) -> None:
    contact_id = crm.person(lifecycle_stage=stage)
    crm.score(contact_id, "meeting_held")
    crm.score(contact_id, "email_in")

    crm.score(contact_id, "form")  # 48: across mql

    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert qualified["threshold"] == "mql"
    assert (qualified["lifecycle_stage_before"], qualified["lifecycle_stage_after"]) == (
        stage,
        after,
    )
    assert crm.stage(contact_id) == after
    assert crm.item(contact_id)["version"] == (2 if after != stage else 1)


def test_an_mql_crossing_sql_becomes_an_sql(crm: Crm) -> None:
    contact_id = crm.person()
    for kind in ("meeting_held", "form", "meeting_booked", "call_connected"):  # 65: an mql
        crm.score(contact_id, kind)
    assert crm.stage(contact_id) == "mql"

    result = crm.score(contact_id, "meeting_held")  # 90

    assert (result["qualified"], result["lifecycle_stage"]) == ("sql", "sql")
    assert [q["threshold"] for q in crm.events(contact_id, "LeadQualified")] == ["mql", "sql"]
    assert crm.events(contact_id, "LeadQualified")[-1]["lifecycle_stage_before"] == "mql"


def test_a_stage_moved_by_scoring_counts_in_the_fit_rules_on_the_stage(
    crm: Crm, scoring_api: Api
) -> None:
    put_model(
        scoring_api,
        fit=[
            {
                "id": "marketing-qualified",
                "field": "lifecycle_stage",
                "operator": "eq",
                "value": "mql",
                "points": 5,
            }
        ],
    )
    contact_id = crm.person()
    crm.score(contact_id, "meeting_held")
    crm.score(contact_id, "email_in")

    result = crm.score(contact_id, "form")  # 48: across mql, moved to mql

    assert crm.stage(contact_id) == "mql"
    state = crm.state(contact_id)
    assert (state.fit, dict(state.fit_rules)) == (5, {"marketing-qualified": 5})
    assert result["new_score"] == pytest.approx(53, abs=CLOSE)
    last = crm.events(contact_id, "LeadScoreChanged")[-1]
    assert {r["rule_id"]: r["points"] for r in last["reasons"]} == {
        "form-submitted": 15,
        "marketing-qualified": 5,
    }
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert (qualified["threshold"], qualified["lifecycle_stage_after"]) == ("mql", "mql")


def test_a_persons_stage_change_after_the_event_wins(crm: Crm) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "form")
    crm.score(contact_id, "email_in")
    event = crm.event_of(crm.log(contact_id, "meeting_held"))  # 48: across mql
    time.sleep(0.01)  # the person's change comes a moment after the meeting was logged
    crm.contacts.update(TENANT, contact_id, {"lifecycle_stage": "subscriber"}, None, crm.origin)

    result = crm.deliver(event)

    assert (result["qualified"], result["lifecycle_stage"]) == ("mql", "subscriber")
    assert crm.stage(contact_id) == "subscriber"
    (qualified,) = crm.events(contact_id, "LeadQualified")
    assert (qualified["lifecycle_stage_before"], qualified["lifecycle_stage_after"]) == (
        "subscriber",
        "subscriber",
    )
    assert crm.engagement(contact_id) == pytest.approx(48, abs=CLOSE)


def test_a_persons_stage_change_before_the_event_does_not_block_a_move(crm: Crm) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "form")
    crm.score(contact_id, "email_in")
    crm.contacts.update(TENANT, contact_id, {"lifecycle_stage": "subscriber"}, None, crm.origin)
    time.sleep(0.01)

    result = crm.score(contact_id, "meeting_held")

    assert (result["qualified"], result["lifecycle_stage"]) == ("mql", "mql")
    assert crm.stage(contact_id) == "mql"


# Fit ---------------------------------------------------------------------------------------
def test_a_title_gives_fit_points_and_removing_it_takes_them_back(crm: Crm) -> None:
    contact_id = crm.person()

    crm.contacts.update(TENANT, contact_id, {"title": "VP Sales"}, None, crm.origin)
    added = crm.deliver(delivered(crm.outbox(contact_id, "ContactUpdated")[-1]))
    state = crm.state(contact_id)

    assert (added["old_score"], added["new_score"]) == (0, 12)
    assert (state.fit, dict(state.fit_rules)) == (12, {"has-title": 2, "senior-title": 10})
    assert state.engagement.is_zero

    crm.contacts.update(TENANT, contact_id, {"title": None}, None, crm.origin)
    removed = crm.deliver(delivered(crm.outbox(contact_id, "ContactUpdated")[-1]))
    state = crm.state(contact_id)

    assert (removed["old_score"], removed["new_score"]) == (12, 0)
    assert (state.fit, dict(state.fit_rules)) == (0, {})
    changed = crm.events(contact_id, "LeadScoreChanged")
    assert [{r["rule_id"]: r["points"] for r in c["reasons"]} for c in changed] == [
        {"has-title": 2, "senior-title": 10},
        {"has-title": -2, "senior-title": -10},
    ]
    assert [c["cause"]["detail_type"] for c in changed] == ["ContactUpdated"] * 2


def test_a_new_contact_with_a_title_starts_with_its_fit(crm: Crm) -> None:
    contact_id = crm.person(title="VP of Engineering")

    state = crm.state(contact_id)
    assert (state.fit, state.model_version) == (12, 0)
    (changed,) = crm.events(contact_id, "LeadScoreChanged")
    assert changed["cause"]["detail_type"] == "ContactCreated"


def test_an_edit_of_nothing_the_fit_rules_test_changes_no_score(crm: Crm) -> None:
    contact_id = crm.person(title="VP Sales")
    crm.contacts.update(TENANT, contact_id, {"first_name": "Ada"}, None, crm.origin)

    result = crm.deliver(delivered(crm.outbox(contact_id, "ContactUpdated")[-1]))

    assert result == {"changed": False}
    assert len(crm.events(contact_id, "LeadScoreChanged")) == 1


def test_fit_does_not_decay_and_engagement_halves_each_half_life(crm: Crm, table: Table) -> None:
    contact_id = crm.person(title="VP Sales")
    crm.score(contact_id, "meeting_held")
    now = time.time()

    def at(days: float) -> Any:
        return explain(table, TENANT, contact_id, clock=lambda: now + days * DAY)

    for days, engagement in ((0, 25), (HALF_LIFE, 12.5), (2 * HALF_LIFE, 6.25), (300, 25 / 1024)):
        score = at(days)
        assert score.fit == 12
        assert score.engagement == pytest.approx(engagement, abs=CLOSE)
        assert score.score == pytest.approx(12 + engagement, abs=CLOSE)
        points = {r.rule_id: r.points for r in score.top_rules}
        assert points["has-title"] == 2
        assert points["senior-title"] == 10
        assert points["meeting-held"] == pytest.approx(engagement, abs=CLOSE)


def test_engagement_earned_later_adds_to_what_is_left_of_the_older(crm: Crm) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "meeting_held", datetime.now(UTC) - timedelta(days=2 * HALF_LIFE))
    crm.score(contact_id, "call_connected")

    assert crm.engagement(contact_id) == pytest.approx(25 / 4 + 10, abs=CLOSE)


# Rebuilds from history ---------------------------------------------------------------------------
def test_a_contacts_first_event_scores_its_whole_history(crm: Crm) -> None:
    contact_id = crm.person(scored=False)  # its ContactCreated not delivered yet
    crm.log(contact_id, "meeting_held", datetime.now(UTC) - timedelta(days=HALF_LIFE))
    crm.log(contact_id, "note")
    call = crm.log(contact_id, "call_connected")

    result = crm.deliver(crm.event_of(call))

    assert result["new_score"] == pytest.approx(12.5 + 10, abs=CLOSE)
    assert sorted(result["rules"]) == ["call-connected", "meeting-held"]
    assert crm.engagement(contact_id) == pytest.approx(22.5, abs=CLOSE)


def test_an_event_the_rebuild_counted_is_not_counted_again(crm: Crm) -> None:
    contact_id = crm.person(scored=False)
    meeting = crm.event_of(crm.log(contact_id, "meeting_held"))
    call = crm.event_of(crm.log(contact_id, "call_connected"))
    crm.deliver(call)  # rebuilds: the meeting is in the history already
    engagement = crm.engagement(contact_id)

    assert crm.deliver(meeting) == {"changed": False}
    assert crm.engagement(contact_id) == pytest.approx(engagement, abs=CLOSE)
    # ContactCreated, arriving last, only evaluates the fit.
    assert crm.deliver(delivered(crm.outbox(contact_id, "ContactCreated")[-1])) == {
        "changed": False
    }
    assert crm.state(contact_id).rebuilt_ids == (
        meeting["detail"]["data"]["activity"]["id"],
        call["detail"]["data"]["activity"]["id"],
    )


def test_a_contact_scored_with_an_older_model_is_rebuilt_on_its_next_event(
    crm: Crm, scoring_api: Api
) -> None:
    contact_id = crm.person()
    crm.score(contact_id, "meeting_held")
    version = put_model(
        scoring_api,
        behaviour=[
            {
                "id": "meeting-held",
                "activity_type": "meeting",
                "conditions": {"outcome": "completed"},
                "points": 40,
            },
            {"id": "any-call", "activity_type": "call", "points": 3},
        ],
        half_life_days=10,
    )

    result = crm.score(contact_id, "call_connected")

    state = crm.state(contact_id)
    assert (state.model_version, state.half_life_days) == (version, 10)
    assert crm.engagement(contact_id) == pytest.approx(43, abs=CLOSE)
    assert (result["old_score"], result["qualified"]) == (pytest.approx(25, abs=CLOSE), "mql")
    assert crm.events(contact_id, "LeadScoreChanged")[-1]["model_version"] == version


# Merges ------------------------------------------------------------------------------------------
def test_a_merged_contacts_activities_count_on_the_survivor(crm: Crm) -> None:
    survivor = crm.person()
    merged = crm.person()
    day = days_ago(1)
    for kind, at in (("meeting_held", None), ("opened", day), ("opened", day)):
        crm.score(survivor, kind, at)
    for kind, at in (("call_connected", None), ("opened", day), ("opened", day)):
        crm.score(merged, kind, at)
    # One of the survivor's activities whose event has not arrived yet.
    late = crm.event_of(crm.log(survivor, "email_in"))
    crm.contacts.merge(TENANT, survivor, merged, None, crm.origin)
    assert crm.activities.move_all(TENANT, merged, survivor) == 3

    result = crm.deliver(delivered(crm.outbox(survivor, "ContactMerged")[-1]))

    # 25 + 8 + 10, and opens of one day capped at 3 across both contacts' histories.
    now = time.time()
    expected = 25 + 8 + 10 + decayed(3, day, now)
    assert result["changed"] is True
    assert crm.engagement(survivor) == pytest.approx(expected, abs=CLOSE)
    state = crm.state(survivor)
    assert state.caps["email-opened"]["total"] == 3
    assert set(state.behaviour) == {
        "meeting-held",
        "email-replied",
        "call-connected",
        "email-opened",
    }
    (qualified,) = crm.events(survivor, "LeadQualified")
    assert qualified["threshold"] == "mql"
    assert crm.stage(survivor) == "mql"
    last = crm.events(survivor, "LeadScoreChanged")[-1]
    assert last["cause"]["detail_type"] == "ContactMerged"

    # Events that arrive after the rebuild count nothing twice: the survivor's late one
    # was in the history rebuilt; the merged contact's name a contact that is no more.
    assert crm.deliver(late) == {"changed": False}
    crm.forget_deliveries()
    for outbox in crm.outbox(merged, "ActivityLogged"):
        assert crm.deliver(delivered(outbox)) == {"changed": False}
    assert crm.engagement(survivor) == pytest.approx(expected, abs=CLOSE)


def test_a_merge_scored_before_the_activities_move_still_counts_them(crm: Crm) -> None:
    survivor = crm.person()
    merged = crm.person()
    crm.score(survivor, "meeting_held")
    crm.score(merged, "call_connected")
    crm.contacts.merge(TENANT, survivor, merged, None, crm.origin)
    event = delivered(crm.outbox(survivor, "ContactMerged")[-1])

    # Both consumers get the event from the bus; nothing orders one before the other.
    crm.deliver(event)
    crm.activities.move_all(TENANT, merged, survivor)

    assert crm.engagement(survivor) == pytest.approx(35, abs=CLOSE)


def test_events_of_a_merged_contact_change_nothing(crm: Crm) -> None:
    survivor = crm.person()
    merged = crm.person()
    pending = crm.event_of(crm.log(merged, "meeting_held"))
    crm.contacts.merge(TENANT, survivor, merged, None, crm.origin)

    assert crm.deliver(pending) == {"changed": False}
    assert crm.changes(merged) == []


# GET /contacts/{id}/score ------------------------------------------------------------------------
def test_the_score_of_a_contact_never_scored(crm: Crm, scoring_api: Api) -> None:
    contact_id = crm.person(scored=False)

    reply = scoring_api.call("GET", f"/contacts/{contact_id}/score", VIEWER)

    assert reply.status == 200, reply.text
    body = reply.json
    assert body["contact_id"] == contact_id
    assert (body["score"], body["fit"], body["engagement"]) == (0, 0, 0)
    assert (body["half_life_days"], body["model_version"], body["updated_at"]) == (None, None, None)
    assert body["thresholds"] == {"mql": 40, "sql": 80}
    assert body["lifecycle_stage"] == "lead"
    assert (body["top_rules"], body["changes"]) == ([], [])


def test_the_score_explained(crm: Crm, scoring_api: Api) -> None:
    contact_id = crm.person(title="VP Sales")
    meeting = crm.log(contact_id, "meeting_held")
    meeting_event = crm.event_of(meeting)
    crm.deliver(meeting_event)
    crm.score(contact_id, "pricing")
    crm.score(contact_id, "bounced")

    reply = scoring_api.call("GET", f"/contacts/{contact_id}/score", VIEWER)

    assert reply.status == 200, reply.text
    body = reply.json
    state = crm.state(contact_id)
    assert body["score"] == pytest.approx(12 + 25 + 15 - 10, abs=CLOSE)
    assert (body["fit"], body["half_life_days"], body["model_version"]) == (12, 30, 0)
    assert body["engagement"] == pytest.approx(30, abs=CLOSE)
    assert body["updated_at"] == state.updated_at
    assert body["computed_at"] >= body["updated_at"]
    assert body["lifecycle_stage"] == "mql"
    # Heaviest first, either way, each named and said in words.
    assert [(r["rule_id"], r["kind"], round(r["points"])) for r in body["top_rules"]] == [
        ("meeting-held", "behaviour", 25),
        ("email-bounced", "behaviour", -10),
        ("pricing-clicked", "behaviour", 10),
        ("senior-title", "fit", 10),
        ("email-clicked", "behaviour", 5),
        ("has-title", "fit", 2),
    ]
    says = {r["rule_id"]: r["says"] for r in body["top_rules"]}
    assert says["senior-title"] == "title contains 'VP': +10"
    assert "meeting" in says["meeting-held"]
    assert says["pricing-clicked"].endswith("+10, at most 10 a day")
    # Changes, newest first: the bounce, the click, the meeting, the title at creation.
    changes = body["changes"]
    assert [c["cause"]["detail_type"] for c in changes] == [
        "ActivityLogged",
        "ActivityLogged",
        "ActivityLogged",
        "ContactCreated",
    ]
    assert [c["new_score"] - c["old_score"] for c in changes] == pytest.approx(
        [-10, 15, 25, 12], abs=CLOSE
    )
    meeting_change = changes[2]
    assert meeting_change["cause"] == {
        "detail_type": "ActivityLogged",
        "event_id": meeting_event["detail"]["metadata"]["event_id"],
        "activity_id": meeting["id"],
        "activity_type": "meeting",
    }
    assert meeting_change["reasons"] == [{"rule_id": "meeting-held", "points": 25}]
    assert (meeting_change["fit"], meeting_change["model_version"]) == (12, 0)
    assert meeting_change["lifecycle_stage"] is None
    assert changes[1]["lifecycle_stage"] == "mql"  # 12 + 25 + 15 crossed 40
    assert set(meeting_change) == {
        "at",
        "old_score",
        "new_score",
        "fit",
        "engagement",
        "model_version",
        "reasons",
        "cause",
        "lifecycle_stage",
    }


def test_the_score_shows_the_last_50_changes_newest_first(crm: Crm, scoring_api: Api) -> None:
    contact_id = crm.person()
    for n in range(CHANGES_SHOWN + 5):
        crm.log(contact_id, "call_connected", days_ago(n / 24))
    events = []
    for outbox in crm.outbox(contact_id, "ActivityLogged"):  # in the order they were logged
        crm.deliver(delivered(outbox))
        events.append(json.loads(outbox["detail"])["metadata"]["event_id"])

    body = scoring_api.call("GET", f"/contacts/{contact_id}/score", VIEWER).json

    assert len(body["changes"]) == CHANGES_SHOWN == 50
    assert [c["cause"]["event_id"] for c in body["changes"]] == sorted(events, reverse=True)[:50]
    scores = [c["new_score"] for c in body["changes"]]
    assert scores == sorted(scores, reverse=True)
    assert body["engagement"] == pytest.approx(scores[0], abs=CLOSE)


def test_changes_are_newest_first_even_when_events_arrive_out_of_order(
    crm: Crm, scoring_api: Api
) -> None:
    contact_id = crm.person()
    older = crm.event_of(crm.log(contact_id, "call_connected"))
    newer = crm.event_of(crm.log(contact_id, "meeting_held"))
    crm.deliver(newer)  # EventBridge does not keep order; a retry comes minutes later
    crm.deliver(older)

    changes = scoring_api.call("GET", f"/contacts/{contact_id}/score", VIEWER).json["changes"]

    # The last change (the call's, 25 -> 35) first.
    assert [c["new_score"] for c in changes] == pytest.approx([35, 25], abs=CLOSE)


def test_the_score_of_a_merged_contact_redirects_to_the_survivors(
    crm: Crm, scoring_api: Api
) -> None:
    survivor = crm.person()
    merged = crm.person()
    crm.contacts.merge(TENANT, survivor, merged, None, crm.origin)

    reply = scoring_api.call("GET", f"/contacts/{merged}/score", VIEWER)

    assert reply.status == 308, reply.text
    assert reply.headers["location"] == f"/contacts/{survivor}/score"
    assert reply.json["merged_into"] == survivor


def test_another_tenants_contact_has_no_score_here(crm: Crm, scoring_api: Api) -> None:
    theirs = crm.person("globex")
    crm.score(theirs, "meeting_held", tenant="globex")

    reply = scoring_api.call("GET", f"/contacts/{theirs}/score", VIEWER)

    assert reply.status == 404, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert scoring_api.call("GET", f"/contacts/{new_ulid()}/score", VIEWER).status == 404
    own = scoring_api.call("GET", f"/contacts/{theirs}/score", User("globex", ("viewer",)))
    assert own.status == 200
    assert own.json["engagement"] == pytest.approx(25, abs=CLOSE)


# Cost ---------------------------------------------------------------------------------------------
def test_an_event_costs_the_same_calls_however_long_the_history(
    crm: Crm, function: ConsumerFunction
) -> None:
    def contact_with_history(activities: int) -> str:
        contact_id = crm.person(scored=False)
        start = datetime.now(UTC) - timedelta(hours=activities + 1)
        logged = [
            crm.log(contact_id, "call_connected", start + timedelta(hours=n))
            for n in range(activities)
        ]
        # Its first event scores it from its whole history; every later one adds to that.
        crm.deliver(crm.event_of(logged[-1]))
        assert crm.state(contact_id).scored
        crm.score(contact_id, "call_connected")
        return contact_id

    def measured(contact_id: str) -> Counter[str]:
        event = crm.event_of(crm.log(contact_id, "call_connected"))
        with count_calls(function.context.table.client) as calls:
            result = crm.deliver(event)
        assert result["changed"] is True
        return calls.by_operation

    short, long = contact_with_history(10), contact_with_history(300)

    # The consumer's idempotency record (put, then completed), one read of the contact,
    # the model and the ranks, one transaction.
    expected = Counter({"PutItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1, "UpdateItem": 1})
    assert measured(short) == expected
    assert measured(long) == expected


# Faults at the AWS boundary --------------------------------------------------------------------
