"""A stage's contacts highest score first (crm_core/scores/ranking.py), against brute force.

Worlds of contacts are scored by the real scorer (fit, positive and negative engagement,
activities at varied past times, caps) under three model versions one after the other,
without the re-score job: the stage's contacts end up spread over many ranks (half-life and
fit), and some in several half-lives at once. Every page of the listing, followed cursor
after cursor with small limits, is compared with a plain sort of every contact of the stage
by `ScoreState.of(item).total_at(at)` (ties: the higher id first): the same contacts, once
each, in the same order; with `min_score`, exactly those that reach it as shown (the
listing's tolerance, `ranking._SHOWN`).

Worlds are drawn from seeded random numbers, so a failure names its seed and replays
(SCORE_RANKING_SEEDS=1,2,3 runs more). Then the same through the HTTP API, and cursors
tampered with.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import random
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.events.activities import ActivityData, ActivityFacts, ActivityLogged
from crm_core.events.contacts import ContactCreated
from crm_core.events.envelope import Origin
from crm_core.records.contact import ContactCreate
from crm_core.scores import decay, ranking
from crm_core.scores.ranking import contacts_by_score
from crm_core.scores.state import ScoreState, rank_of
from crm_core.scoring.models import ScoringModelInput
from crm_core.scoring.rules import Activity
from crm_core.scoring.scorer import Scorer
from crm_core.scoring.store import ModelStore
from crm_core.table import Table
from tests.support.activities import Stores
from tests.support.api import Api, Reply, User
from tests.support.checks import assert_problem, table_items
from tests.support.events import contact_created

TENANT, OTHER = "acme", "globex"
STAGE = "lead"
DAY = 86_400.0
ORIGIN = Origin.user("user-1", "req-1")
# `min_score` keeps the contacts whose score reaches it as people see it (ranking.py takes
# them down to this much below it).
TOLERANCE: float = getattr(ranking, "_SHOWN", 1e-9)

# Behaviour rules: points up and down, one capped per day. Notes earn nothing.
BEHAVIOUR: list[dict[str, Any]] = [
    {
        "id": "connected",
        "activity_type": "call",
        "conditions": {"outcome": "connected"},
        "points": 10,
    },
    {
        "id": "voicemail",
        "activity_type": "call",
        "conditions": {"outcome": "left_voicemail"},
        "points": 3,
    },
    {"id": "busy", "activity_type": "call", "conditions": {"outcome": "busy"}, "points": -4},
    {"id": "opened", "activity_type": "email_opened", "points": 1, "cap_per_day": 2},
    {"id": "bounced", "activity_type": "email_bounced", "points": -10},
    {"id": "unsubscribed", "activity_type": "unsubscribed", "points": -25},
]
KINDS: list[tuple[ActivityType, dict[str, Any]]] = [
    (ActivityType.CALL, {"direction": "outbound", "outcome": "connected"}),
    (ActivityType.CALL, {"direction": "outbound", "outcome": "left_voicemail"}),
    (ActivityType.CALL, {"direction": "outbound", "outcome": "busy"}),
    (ActivityType.EMAIL_OPENED, {}),
    (ActivityType.EMAIL_OPENED, {}),
    (ActivityType.EMAIL_BOUNCED, {"bounce_type": "permanent"}),
    (ActivityType.UNSUBSCRIBED, {"method": "link"}),
    (ActivityType.NOTE, {"body": "no points"}),
]
POINTED = len(KINDS) - 1  # the kinds before the note
# The model versions a world goes through: (half-life, points of each fit rule), and how
# old its activities may be. Ages are kept where the engagement still shows beside the fit
# at the moments listed (the case where it does not is test_decayed_engagement_..., below).
PHASES: list[tuple[float, dict[str, int], float]] = [
    (30.0, {"gold": 12, "silver": 5, "titled": 2, "spam": -6}, 200),
    (1.5, {"gold": 9, "silver": 5, "titled": 3, "spam": -6}, 10),
    (3650.0, {"gold": 12, "silver": 4, "titled": 2, "spam": -8}, 900),
]


def model(half_life: float, fit_points: dict[str, int], behaviour: Any = None) -> ScoringModelInput:
    tier = {"field": "attributes.tier", "operator": "eq"}
    fit = [
        {"id": "gold", **tier, "value": "gold", "points": fit_points["gold"]},
        {"id": "silver", **tier, "value": "silver", "points": fit_points["silver"]},
        {"id": "titled", "field": "title", "operator": "exists", "points": fit_points["titled"]},
        {
            "id": "spam",
            "field": "attributes.spam",
            "operator": "exists",
            "points": fit_points["spam"],
        },
    ]
    return ScoringModelInput.model_validate(
        {
            "behaviour": BEHAVIOUR if behaviour is None else behaviour,
            "fit": fit,
            "half_life_days": half_life,
            # Out of reach: no contact is promoted out of its stage.
            "thresholds": {"mql": 99_000, "sql": 100_000},
        }
    )


# Driving the scorer as lead_scoring does ------------------------------------------------------
class Crm:
    """Contacts, their activities and the scorer (a fixed clock), on the test's table."""

    def __init__(self, table: Table, now: float) -> None:
        self.table = table
        self.stores = Stores(table)
        self.now = now
        self.scorer = Scorer(table, clock=lambda: self.now)

    def use_model(self, tenant: str, body: ScoringModelInput) -> None:
        ModelStore(self.table).replace(tenant, body, None, ORIGIN)

    def contact(self, tenant: str, stage: str = STAGE, **fields: Any) -> str:
        email = f"{random.getrandbits(64):016x}@example.com"
        body = ContactCreate.model_validate({"email": email, "lifecycle_stage": stage, **fields})
        return self.stores.contacts.create(tenant, body, ORIGIN).id

    def fit(self, tenant: str, contact_id: str) -> None:
        """ContactCreated reaches the scorer: the contact's fit."""
        event = ContactCreated.model_validate(contact_created(tenant))
        self.scorer.on_contact(event, contact_id)

    def activity(
        self, tenant: str, contact_id: str, kind: tuple[ActivityType, dict[str, Any]], at: float
    ) -> None:
        """An activity logged (it happened at `at`, epoch seconds), then its ActivityLogged
        handled by the scorer."""
        activity_type, fields = kind
        occurred = datetime.fromtimestamp(at, tz=UTC)
        stored = self.stores.activities.log(
            tenant,
            contact_id,
            activity_type,
            validate_fields(activity_type, fields),
            occurred,
            ORIGIN,
        )
        facts = ActivityFacts.of(stored)
        event = ActivityLogged.create(tenant, ORIGIN, ActivityData(activity=facts), now_iso())
        self.scorer.on_activity(event, Activity.of(facts.model_dump()))

    def item(self, tenant: str, contact_id: str) -> Item:
        found = self.table.get(keys.contact(tenant, contact_id))
        assert found is not None
        return found


# A world -------------------------------------------------------------------------------------
# The scorer's clock while a world is made, so that a seed makes the same scores whenever
# it runs (days of caps, the decay's floating point). Its activities happened before it.
WORLD_NOW = datetime(2026, 9, 1, 12, tzinfo=UTC).timestamp()


@dataclass
class Plan:
    """What happens to one contact: its fields, whether ContactCreated was scored, and its
    activities (kind, age in seconds) under each model version."""

    tenant: str
    stage: str
    fields: dict[str, Any]
    fitted: bool
    activities: list[list[tuple[int, float]]]


@dataclass
class World:
    crm: Crm
    now: float
    ids: dict[str, list[str]] = field(default_factory=dict)  # tenant -> contact ids

    @property
    def table(self) -> Table:
        return self.crm.table

    def items(self, tenant: str, stage: str) -> list[Item]:
        found = [self.crm.item(tenant, cid) for cid in self.ids[tenant]]
        return [i for i in found if i["lifecycle_stage"] == stage]

    def expected(
        self, at: float, min_score: float | None = None, stage: str = STAGE, tenant: str = TENANT
    ) -> list[str]:
        """Brute force: every contact of the stage by its score at `at`, the higher id first
        among equal scores; those at `min_score` or above."""
        scored = [(ScoreState.of(i).total_at(at), i["id"]) for i in self.items(tenant, stage)]
        if min_score is not None:
            scored = [s for s in scored if s[0] >= min_score - TOLERANCE]
        return [cid for _, cid in sorted(scored, reverse=True)]

    def totals(self, at: float, stage: str = STAGE, tenant: str = TENANT) -> list[float]:
        return [ScoreState.of(i).total_at(at) for i in self.items(tenant, stage)]

    def ranks(self, stage: str = STAGE, tenant: str = TENANT) -> set[str]:
        return {ScoreState.of(i).rank for i in self.items(tenant, stage)}


def plan(rng: random.Random, tenant: str) -> Plan:
    stage = STAGE if rng.random() < 0.85 else "mql"
    attributes: dict[str, Any] = {}
    tier = rng.choice(["gold", "silver", None, None])
    if tier:
        attributes["tier"] = tier
    if rng.random() < 0.2:
        attributes["spam"] = True
    fields: dict[str, Any] = {"attributes": attributes}
    if rng.random() < 0.5:
        fields["title"] = "VP Sales"
    activities: list[list[tuple[int, float]]] = []
    quiet = rng.random() < 0.2  # never any activity: no engagement
    for phase, (_, _, max_age) in enumerate(PHASES):
        count = rng.choice([0, 1, 2, 3]) if phase == 0 else rng.choice([0, 0, 0, 1, 2])
        count = 0 if quiet else count
        ages = {round(rng.uniform(60, max_age * DAY), 3) for _ in range(count)}
        # After the first version, activities that earn points: a rebuild that found only
        # notes would leave the old activities' engagement, decayed out of sight.
        kinds = len(KINDS) if phase == 0 else POINTED
        activities.append([(rng.randrange(kinds), age) for age in sorted(ages)])
    return Plan(tenant, stage, fields, rng.random() < 0.8, activities)


def build_world(table: Table, seed: int, contacts: int, others: int = 4, twins: int = 2) -> World:
    """`contacts` contacts of TENANT (about 85% in STAGE, the rest mql), `twins` of them
    with a twin (the same fields and history, so the same score: ties), and `others`
    contacts of OTHER, all scored through three model versions."""
    rng = random.Random(seed)
    now = WORLD_NOW
    crm = Crm(table, now)
    plans = [plan(rng, TENANT) for _ in range(contacts - twins)]
    for i in range(twins):
        plans[i].stage = STAGE
        plans.append(plans[i])
    plans += [plan(rng, OTHER) for _ in range(others)]
    world = World(crm, now, {TENANT: [], OTHER: []})
    ids = [crm.contact(p.tenant, p.stage, **p.fields) for p in plans]
    for cid, p in zip(ids, plans, strict=True):
        world.ids[p.tenant].append(cid)
    for phase, (half_life, fit_points, _) in enumerate(PHASES):
        for tenant in (TENANT, OTHER):
            crm.use_model(tenant, model(half_life, fit_points))
        for cid, p in zip(ids, plans, strict=True):
            if phase == 0 and p.fitted:
                crm.fit(p.tenant, cid)
            for kind, age in p.activities[phase]:
                crm.activity(p.tenant, cid, KINDS[kind], now - age)
    return world


# A world is built once per process and copied into each test's fresh table: its contacts
# and its ranks, what a listing reads (not the activities, events, models and score
# changes, which only make moto's Queries slower).
_BUILT: dict[tuple[int, ...], tuple[list[dict[str, Any]], float, dict[str, list[str]]]] = {}


def world_of(table: Table, seed: int, contacts: int, others: int = 4, twins: int = 2) -> World:
    built = _BUILT.get((seed, contacts, others, twins))
    if built is None:
        world = build_world(table, seed, contacts, others, twins)
        items = table_items(table)
        kept = [i for i in items if i["SK"]["S"] in ("PROFILE", "RANKS")]
        gone = [i for i in items if i not in kept]
        table.batch_delete([{"PK": i["PK"]["S"], "SK": i["SK"]["S"]} for i in gone])
        _BUILT[(seed, contacts, others, twins)] = (kept, world.now, world.ids)
        return world
    items, now, ids = built
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        left = table.client.batch_write_item(RequestItems={table.name: batch})
        assert not left.get("UnprocessedItems"), left
    return World(Crm(table, now), now, {tenant: list(v) for tenant, v in ids.items()})


def walk(
    table: Table,
    stage: str,
    limit: int,
    min_score: float | None,
    clock: Callable[[], float],
    tenant: str = TENANT,
) -> list[str]:
    """Every page of the listing, cursor after cursor: the ids in the order shown."""
    shown: list[str] = []
    cursor = None
    for _ in range(500):
        page = contacts_by_score(table, tenant, stage, limit, cursor, min_score, clock)
        assert len(page.items) <= limit
        for item in page.items:
            assert (item["tenant_id"], item["lifecycle_stage"]) == (tenant, stage), item
        shown += [i["id"] for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return shown
    raise AssertionError("the listing never ends")


def fixed(at: float) -> Callable[[], float]:
    return lambda: at


def weekly(start: float) -> Callable[[], float]:
    """A clock a week later at each reading."""
    ticks = itertools.count()
    return lambda: start + next(ticks) * 7 * DAY


def boundaries(totals: list[float], rng: random.Random) -> list[float]:
    """Minimums worth trying: exactly a contact's score (it is in), just above one (within
    the tolerance: in; beyond it: out), between two scores, whole numbers (the fit of
    contacts without engagement), below and above everything."""
    distinct = sorted(set(totals))
    picks = rng.sample(distinct, min(4, len(distinct)))
    found = [*picks, picks[0] + TOLERANCE / 2, picks[1] + TOLERANCE + 1e-6]
    between = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    found += between[:: max(1, len(between) // 2)]
    found += [0.0, 5.0, -6.0, min(distinct) - 1, max(distinct) + 1]
    return found


# The listing against brute force ---------------------------------------------------------------
# More seeds: SCORE_RANKING_SEEDS=1,2,3 (each world takes some seconds to score).
SEEDS = [int(s) for s in os.environ.get("SCORE_RANKING_SEEDS", "11").split(",")]


@pytest.fixture(params=SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def world(request: pytest.FixtureRequest, table: Table) -> World:
    return world_of(table, request.param, contacts=26)


def test_every_page_agrees_with_a_sort_of_every_contact(world: World) -> None:
    # The world is what it claims: many ranks of one stage, several half-lives, both signs,
    # ties (twins, and contacts of one fit without engagement).
    items = world.items(TENANT, STAGE)
    states = [ScoreState.of(i) for i in items]
    assert len(world.ranks()) >= 6, world.ranks()
    assert len({s.half_life_days for s in states if not s.engagement.is_zero}) >= 2
    assert {s.engagement.sign for s in states} >= {-1, 0, 1}
    assert len(set(world.totals(world.now))) < len(items)
    later = world.now + 2.5 * DAY
    for at, limits in ((world.now, (1, 4, 100)), (later, (2, 7))):
        expected = world.expected(at)
        assert len(expected) == len(items)
        for limit in limits:
            assert walk(world.table, STAGE, limit, None, fixed(at)) == expected, (at, limit)
    # Another stage, another tenant: their contacts only, in their own order.
    assert walk(world.table, "mql", 2, None, fixed(later)) == world.expected(later, stage="mql")
    theirs = walk(world.table, STAGE, 3, None, fixed(later), tenant=OTHER)
    assert theirs == world.expected(later, tenant=OTHER)
    assert not set(theirs) & set(world.ids[TENANT])


def test_min_score_keeps_exactly_the_contacts_at_or_above_it(world: World) -> None:
    at = world.now + 0.25 * DAY
    for minimum in boundaries(world.totals(at), random.Random(7)):
        expected = world.expected(at, minimum)
        assert walk(world.table, STAGE, 3, minimum, fixed(at)) == expected, minimum


def test_exactly_at_the_minimum_is_in_and_just_below_is_out(world: World) -> None:
    at = world.now + 2 * DAY
    for item in random.Random(3).sample(world.items(TENANT, STAGE), 5):
        score = ScoreState.of(item).total_at(at)
        assert item["id"] in walk(world.table, STAGE, 100, score, fixed(at))
        assert item["id"] in walk(world.table, STAGE, 100, score + TOLERANCE / 2, fixed(at))
        beyond = score + TOLERANCE + 1e-6
        above = walk(world.table, STAGE, 2, beyond, fixed(at))
        assert item["id"] not in above
        assert above == world.expected(at, beyond)


def test_pages_keep_the_first_pages_moment_while_the_clock_moves_on(world: World) -> None:
    """Each page is read a week after the last: every score has decayed meanwhile, yet the
    pages together are the list at the first page's moment (the cursor's `at`)."""
    start = world.now + 0.5 * DAY
    for limit, minimum in ((2, None), (3, 0.0)):
        assert walk(world.table, STAGE, limit, minimum, weekly(start)) == world.expected(
            start, minimum
        )


# Where the index order and the score order part -------------------------------------------------
FIXED_NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()


def _ordered_pair(crm: Crm, tenant: str, **fields: Any) -> tuple[str, str]:
    """Two new contacts of STAGE: (the lower id, the higher id)."""
    pair = sorted(crm.contact(tenant, **fields) for _ in range(2))
    return pair[0], pair[1]


def assert_pages_agree(table: Table, everyone: set[str]) -> None:
    """One page or one contact a page, the same list: everyone once, by score. (Which of two
    equal scores comes first is left to the fix; that none is skipped is not.)"""
    whole = walk(table, STAGE, 100, None, fixed(FIXED_NOW))
    assert sorted(whole) == sorted(everyone)
    scores = [
        ScoreState.of(table.get(keys.contact(TENANT, c)) or {}).total_at(FIXED_NOW) for c in whole
    ]
    # By score, to the precision of the index's key (9 decimals of a logarithm).
    assert all(a >= b - 1e-9 * max(1.0, abs(b)) for a, b in itertools.pairwise(scores))
    assert walk(table, STAGE, 1, None, fixed(FIXED_NOW)) == whole


def _require(condition: bool, what: str) -> None:
    # Not an assert: a set-up that is not what the test needs is a broken test, not a
    # finding about the listing.
    if not condition:
        raise RuntimeError(f"the set-up is not what the test needs: {what}")


def test_decayed_engagement_lost_beside_the_fit_skips_no_contact(table: Table) -> None:
    crm = Crm(table, FIXED_NOW)
    crm.use_model(TENANT, model(1.5, PHASES[1][1]))
    low, high = _ordered_pair(crm, TENANT, attributes={"tier": "gold"})
    for cid, days in ((low, 150), (high, 160)):
        crm.fit(TENANT, cid)
        crm.activity(TENANT, cid, KINDS[0], FIXED_NOW - days * DAY)
    a, b = (ScoreState.of(crm.item(TENANT, c)) for c in (low, high))
    _require(a.rank == b.rank == rank_of(1.5, 9), f"{a.rank}, {b.rank}")
    _require(a.total_at(FIXED_NOW) == b.total_at(FIXED_NOW) == 9.0, "equal scores")
    _require(a.engagement.log2 > b.engagement.log2, "the lower id has more engagement")
    assert_pages_agree(table, {low, high})


def _orders_apart(
    points: list[int], times: list[float], half_life: float
) -> tuple[list[int], list[int]] | None:
    """Two orders of adding the same points that give engagements apart in their last
    bits (the same sort key, different scores), if there are: (more, less)."""
    found: dict[float, list[int]] = {}
    for order in itertools.permutations(range(len(points))):
        engagement = decay.NONE
        for i in order:
            engagement = decay.add(engagement, points[i], times[i], half_life)
        found.setdefault(engagement.sign * engagement.log2, list(order))
    if len(found) < 2:
        return None
    return found[max(found)], found[min(found)]


def test_engagements_equal_to_the_key_but_not_to_the_bit_skip_no_contact(table: Table) -> None:
    crm = Crm(table, FIXED_NOW)
    crm.use_model(TENANT, model(30.0, PHASES[0][1]))
    kinds = [0, 2, 0]  # +10, -4, +10
    points = [10, -4, 10]
    rng = random.Random(3)
    orders = None
    while orders is None:
        times = [FIXED_NOW - rng.randrange(1, 90 * 86_400) for _ in kinds]
        orders = _orders_apart(points, times, 30.0)
    more, less = orders  # more engagement: the higher score
    low, high = _ordered_pair(crm, TENANT)  # no fit: rank 30.0:0
    for cid, order in ((low, more), (high, less)):
        crm.fit(TENANT, cid)
        for i in order:
            crm.activity(TENANT, cid, KINDS[kinds[i]], times[i])
    a, b = (crm.item(TENANT, c) for c in (low, high))
    _require(a["GSI2PK"] == b["GSI2PK"], "one rank")
    _require(a["GSI2SK"].split("#")[0] == b["GSI2SK"].split("#")[0], "one engagement key")
    _require(
        ScoreState.of(a).total_at(FIXED_NOW) > ScoreState.of(b).total_at(FIXED_NOW),
        "the lower id scores higher",
    )
    assert_pages_agree(table, {low, high})


# Through the HTTP API -------------------------------------------------------------------------
ADMIN = User(TENANT)


@pytest.fixture
def small(api: Api, table: Table) -> World:
    return world_of(table, 5, contacts=12, twins=1)


def listing(api: Api, user: User = ADMIN, **query: Any) -> Reply:
    return api.call("GET", "/contacts", user, query={k: str(v) for k, v in query.items()})


def http_walk(api: Api, user: User = ADMIN, **query: Any) -> list[str]:
    shown: list[str] = []
    cursor = None
    for _ in range(200):
        reply = listing(api, user, **query, **({"cursor": cursor} if cursor else {}))
        assert reply.status == 200, reply.text
        page = reply.json
        assert len(page["items"]) <= int(query.get("limit", 20))
        shown += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return shown
    raise AssertionError("the listing never ends")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The contacts store's clock (what `at` a first page takes), moved by the test."""
    from crm_core.contacts import store

    now = [time.time()]
    monkeypatch.setattr(store, "time", types.SimpleNamespace(time=lambda: now[0]))
    return now


def test_the_api_lists_the_stage_in_score_order_across_pages(
    api: Api, small: World, clock: list[float]
) -> None:
    clock[0] = at = small.now + DAY
    expected = small.expected(at)
    assert http_walk(api, lifecycle_stage=STAGE, limit=100) == expected
    # Each page a fortnight after the last: still the list at the first page's moment.
    shown, cursor = [], None
    while True:
        query = {"lifecycle_stage": STAGE, "sort": "-score", "limit": "2"}
        reply = listing(api, **query, **({"cursor": cursor} if cursor else {}))
        assert reply.status == 200, reply.text
        assert len(reply.json["items"]) <= 2
        shown += [c["id"] for c in reply.json["items"]]
        cursor = reply.json["next_cursor"]
        clock[0] += 14 * DAY
        if cursor is None:
            break
    assert shown == expected


def test_the_api_lists_the_stage_at_or_above_a_minimum(
    api: Api, small: World, clock: list[float]
) -> None:
    clock[0] = at = small.now + DAY
    totals = sorted(small.totals(at))
    for minimum in (totals[len(totals) // 2], totals[1], 0.001, -0.0, 1e-7):
        expected = small.expected(at, minimum)
        assert http_walk(api, lifecycle_stage=STAGE, min_score=repr(minimum), limit=3) == expected


def test_limit_is_respected(api: Api, small: World, clock: list[float]) -> None:
    clock[0] = small.now + DAY
    everyone = len(small.items(TENANT, STAGE))
    for limit in (1, 2, 5, 100):
        reply = listing(api, lifecycle_stage=STAGE, limit=limit)
        assert reply.status == 200, reply.text
        assert len(reply.json["items"]) == min(limit, everyone)
        assert len(http_walk(api, lifecycle_stage=STAGE, limit=limit)) == everyone


@pytest.mark.parametrize("limit", ["0", "-1", "101", "x", "1.5"])
def test_a_bad_limit_is_refused(api: Api, limit: str) -> None:
    reply = listing(api, lifecycle_stage=STAGE, limit=limit)
    assert 400 <= reply.status < 500, reply.text
    assert_problem(reply, reply.status)


@pytest.mark.parametrize(
    "query",
    [
        {"min_score": "10"},
        {"sort": "-score"},
        {"min_score": "0", "sort": "-score"},
        {"min_score": "10", "tag": "vip"},
        {"sort": "-score", "owner_id": "owner-1"},
    ],
)
def test_min_score_or_sort_need_a_stage(api: Api, query: dict[str, str]) -> None:
    body = assert_problem(listing(api, **query), 400)
    assert "lifecycle_stage" in body["detail"]


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e300", "1e10", "x"]
)
def test_a_min_score_that_is_no_usable_number_is_refused(api: Api, value: str) -> None:
    reply = listing(api, lifecycle_stage=STAGE, min_score=value)
    assert 400 <= reply.status < 500, reply.text
    assert_problem(reply, reply.status)


def test_extreme_min_scores_within_the_bounds_are_answered(
    api: Api, small: World, clock: list[float]
) -> None:
    clock[0] = at = small.now + DAY
    for value in ("1e9", "-1e9", "99999.99999", "-99999.5"):
        expected = small.expected(at, float(value))
        assert http_walk(api, lifecycle_stage=STAGE, min_score=value, limit=5) == expected


def test_min_score_counts_each_ranks_fit(table: Table) -> None:
    """Engagement below the minimum, fit and engagement together above it."""
    crm = Crm(table, FIXED_NOW)
    crm.use_model(TENANT, model(*PHASES[0][:2]))
    gold = crm.contact(TENANT, attributes={"tier": "gold"})  # fit 12
    spam = crm.contact(TENANT, attributes={"spam": True})  # fit -6
    for cid in (gold, spam):
        crm.fit(TENANT, cid)
        crm.activity(TENANT, cid, KINDS[1], FIXED_NOW - DAY)  # +3, a day ago
    world = World(crm, FIXED_NOW, {TENANT: [gold, spam]})
    for minimum in (14.0, 10.0, 0.0, -3.5, -4.0, -50.0):
        expected = world.expected(FIXED_NOW, minimum)
        for limit in (1, 5):
            assert walk(table, STAGE, limit, minimum, fixed(FIXED_NOW)) == expected, minimum


# Cursors -------------------------------------------------------------------------------------
def decoded(cursor: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    payload: dict[str, Any] = json.loads(raw)
    return payload


def encoded(payload: Any) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def first_cursor(api: Api, user: User = ADMIN, **query: Any) -> str:
    reply = listing(api, user, lifecycle_stage=STAGE, limit=2, **query)
    _require(reply.status == 200, reply.text)
    cursor: str = reply.json["next_cursor"]
    _require(bool(cursor), f"a next page: {reply.json}")
    return cursor


Tamper = Callable[[dict[str, Any]], str]


def changed(change: Callable[[dict[str, Any]], Any]) -> Tamper:
    """The cursor's payload, changed, encoded as the listing encodes it."""

    def make(payload: dict[str, Any]) -> str:
        change(payload)
        return encoded(payload)

    return make


def ranks(rank: Any, position: Any = None) -> Tamper:
    return changed(lambda p: p.__setitem__("r", {rank: position}))


def position(value: Any) -> Tamper:
    return changed(lambda p: p["r"].__setitem__(sorted(p["r"])[0], value))


def field_set(name: str, value: Any) -> Tamper:
    return changed(lambda p: p.__setitem__(name, value))


def text(value: str) -> Tamper:
    return lambda _: value


def b64(raw: bytes) -> Tamper:
    return lambda _: base64.urlsafe_b64encode(raw).decode().rstrip("=")


ID = "01JBCNTACT0000000000000000"
KEY = "P" + "1" * 17
TAMPERED: dict[str, Tamper] = {
    "garbage": text("not a cursor"),
    "not-base64": text("%%%%"),
    "one-char": text("A"),
    "too-long": text("A" * 20_000),
    "not-json": b64(b"\x00\xff not json"),
    "json-list": b64(b"[1, 2]"),
    "json-number": b64(b"42"),
    "another-list": field_set("l", "contacts"),
    "no-list-name": changed(lambda p: p.pop("l")),
    "ranks-not-a-map": field_set("r", ["0.0:0"]),
    "rank-no-colon": ranks("30.0"),
    "rank-words": ranks("abc:def"),
    "rank-two-colons": ranks("30.0:1:2"),
    "rank-two-points": ranks("1.2.3:4"),
    "rank-huge-fit": ranks("30.0:123456789"),
    "rank-inf": ranks("inf:0"),
    "rank-nan": ranks("nan:0"),
    "rank-empty": ranks(""),
    "too-many-ranks": field_set("r", {f"{i}.0:0": None for i in range(ranking.MAX_RANKS + 1)}),
    "position-garbage": position("nope"),
    "position-number": position(17),
    "position-list": position([KEY + "#" + ID]),
    "position-short": position(KEY[:-1] + "#" + ID),
    "position-lower-id": position(KEY + "#" + ID.lower()),
    "position-bad-sign": position("Q" + KEY[1:] + "#" + ID),
    "position-injected": position(KEY + "#" + ID + "#x"),
    "at-missing": changed(lambda p: p.pop("at")),
    "at-text": field_set("at", "now"),
    "at-true": field_set("at", True),
    "at-null": field_set("at", None),
}


def test_a_tampered_cursor_is_a_400(api: Api, small: World) -> None:
    cursor = first_cursor(api)
    answers = {}
    for name, tamper in TAMPERED.items():
        reply = listing(api, lifecycle_stage=STAGE, cursor=tamper(decoded(cursor)))
        answers[name] = reply.status
        if reply.status == 400:
            assert_problem(reply, 400)
    assert answers == dict.fromkeys(TAMPERED, 400)


# Moments and ranks a cursor can name that no listing writes: they may be refused or
# answered (with nothing, or the caller's contacts), never a 500.
ODD: dict[str, Tamper] = {
    "at-far-future": field_set("at", 1e308),
    "at-far-past": field_set("at", -1e308),
    "at-nan": field_set("at", math.nan),  # json writes NaN, and reads it
    "at-infinity": field_set("at", math.inf),
    "rank-tiny-half-life": ranks("1e-300:0"),
    "rank-negative-half-life": ranks("-1.0:0"),
    "rank-overflowing-half-life": ranks("1e999:0"),
    "rank-zero-written-otherwise": ranks("0:0"),
}
# With a minimum, the moments and half-lives no sort key can be written for (once 500s).
CRASHING = {"at-far-future", "at-far-past", "at-nan", "at-infinity", "rank-tiny-half-life"}


def odd_reply(api: Api, small: World, name: str, minimum: str | None) -> Reply:
    query = {} if minimum is None else {"min_score": minimum}
    cursor = ODD[name](decoded(first_cursor(api, **query)))
    return listing(api, lifecycle_stage=STAGE, cursor=cursor, **query)


def assert_no_500(reply: Reply, small: World, what: str) -> None:
    assert reply.status < 500, f"{what}: {reply.status} {reply.text}"
    if reply.status >= 400:
        assert_problem(reply, 400)
    else:
        assert {c["id"] for c in reply.json["items"]} <= set(small.ids[TENANT]), what


def test_a_cursor_naming_an_odd_moment_or_rank_is_no_500(api: Api, small: World) -> None:
    for name in ODD:
        for minimum in (None, "-100"):
            if minimum is not None and name in CRASHING:
                continue  # test_..._with_a_minimum_is_no_500, below
            assert_no_500(odd_reply(api, small, name, minimum), small, f"{name} {minimum}")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in sorted(CRASHING)],
)
def test_a_cursor_naming_an_odd_moment_or_rank_with_a_minimum_is_no_500(
    api: Api, small: World, name: str
) -> None:
    assert_no_500(odd_reply(api, small, name, "-100"), small, name)


def test_a_cursor_of_another_stage_or_minimum_is_a_400(api: Api, small: World) -> None:
    cursor = first_cursor(api)
    assert_problem(listing(api, lifecycle_stage="mql", cursor=cursor), 400)
    assert_problem(listing(api, lifecycle_stage=STAGE, min_score="0", cursor=cursor), 400)
    with_minimum = first_cursor(api, min_score="-100")
    for other in ("-99", "-100.0001", "100"):
        assert_problem(
            listing(api, lifecycle_stage=STAGE, min_score=other, cursor=with_minimum), 400
        )
    assert_problem(listing(api, lifecycle_stage=STAGE, cursor=with_minimum), 400)
    # The same minimum written otherwise is the same minimum.
    reply = listing(api, lifecycle_stage=STAGE, min_score="-100.0", cursor=with_minimum, limit=2)
    assert reply.status == 200, reply.text


def test_cursors_of_other_lists_are_refused_both_ways(api: Api, small: World) -> None:
    recent = listing(api, limit=2)
    assert recent.status == 200, recent.text
    assert_problem(listing(api, lifecycle_stage=STAGE, cursor=recent.json["next_cursor"]), 400)
    by_score = first_cursor(api)
    assert_problem(listing(api, cursor=by_score), 400)
    assert_problem(listing(api, tag="vip", cursor=by_score), 400)


def test_another_tenants_cursor_is_refused(api: Api, small: World) -> None:
    """A cursor names its tenant: one made for acme is a 400 for globex, which never sees a
    contact of acme's nor a list steered by acme's ranks."""
    cursor = first_cursor(api)
    reply = listing(api, User(OTHER), lifecycle_stage=STAGE, limit=2, cursor=cursor)
    assert_problem(reply, 400)
    mine = listing(api, User(OTHER), lifecycle_stage=STAGE, limit=100)
    assert mine.status == 200, mine.text
    assert {c["id"] for c in mine.json["items"]} == set(small.ids[OTHER])
