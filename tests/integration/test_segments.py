"""Segments (issue 8): CRUD through the HTTP API, roles, tenant isolation, validation, and
previews compared with brute force.

The preview tests build one world of contacts (stages, tags, countries, companies, owners,
consent, creation times, last activities and scores by the real lead_scoring handler), then,
for filters that exercise every index the audience can choose, compare the preview (count,
sample, index) and the audience's full membership with every contact of the tenant read
from the table and checked by `SegmentFilter.matches`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core import keys
from crm_core.campaigns import audience as audience_module
from crm_core.campaigns.audience import SAMPLE_SIZE, Audience
from crm_core.campaigns.segments import SegmentFilter
from crm_core.clock import format_iso
from crm_core.dynamo import from_item, to_attr
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.records.contact import LifecycleStage
from crm_core.scores.state import rank_of
from tests.support.api import Api, LambdaContext, Reply, User
from tests.support.checks import assert_problem, table_items, tenant_items
from tests.support.events import delivered

TENANT, OTHER = "acme", "globex"
ADMIN = User(TENANT, ("admin",))
MARKETING = User(TENANT, ("marketing",))
GLOBEX = User(OTHER, ("admin",))
READERS = ("viewer", "sales", "support")
WRITERS = ("admin", "marketing")
FILTER = {"lifecycle_stage": ["lead"], "tags": {"any": ["vip"]}}


def _create(api: Api, user: User = ADMIN, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", "/segments", user, {"name": "Leads", **body})
    assert reply.status == 201, reply.text
    return dict(reply.json)


def _outbox(table: Any, tenant: str, segment_id: str) -> list[str]:
    """The detail types of the segment's events in its partition's outbox, oldest first."""
    listing = ListQuery("outbox", keys.segment(tenant, segment_id)["PK"])
    page = table.query(listing, 100, None, newest_first=False, sort_prefix=keys.OUTBOX_PREFIX)
    events = [(item["detail_type"], json.loads(item["detail"])) for item in page.items]
    return [kind for kind, detail in events if detail["data"]["segment_id"] == segment_id]


# CRUD -------------------------------------------------------------------------------------
def test_create_answers_201_with_location_and_etag(campaigns_api: Api, table: Any) -> None:
    reply = campaigns_api.call(
        "POST", "/segments", ADMIN, {"name": " Hot leads ", "description": "d", "filter": FILTER}
    )
    assert reply.status == 201, reply.text
    body = reply.json
    assert reply.headers["location"] == f"/segments/{body['id']}"
    assert reply.headers["etag"] == '"1"'
    assert body["name"] == "Hot leads"
    assert body["description"] == "d"
    assert body["filter"] == FILTER
    assert body["version"] == 1
    assert body["created_at"] == body["updated_at"]
    assert _outbox(table, TENANT, body["id"]) == ["SegmentCreated"]

    got = campaigns_api.call("GET", f"/segments/{body['id']}", ADMIN)
    assert got.status == 200, got.text
    assert got.json == body
    assert got.headers["etag"] == '"1"'


def test_list_newest_first_with_cursor_paging(campaigns_api: Api) -> None:
    ids = [_create(campaigns_api, name=f"s{i}")["id"] for i in range(5)]
    _create(campaigns_api, GLOBEX, name="theirs")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        reply = campaigns_api.call("GET", "/segments", ADMIN, query=query)
        assert reply.status == 200, reply.text
        assert len(reply.json["items"]) <= 2
        seen += [s["id"] for s in reply.json["items"]]
        pages += 1
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


def test_patch_replaces_fields_and_filter_whole(campaigns_api: Api, table: Any) -> None:
    segment = _create(campaigns_api, description="old", filter=FILTER)
    path = f"/segments/{segment['id']}"
    new_filter = {"country": ["DE"], "min_score": 10}
    reply = campaigns_api.call(
        "PATCH", path, MARKETING, {"name": "Renamed", "description": None, "filter": new_filter}
    )
    assert reply.status == 200, reply.text
    assert reply.headers["etag"] == '"2"'
    body = reply.json
    assert body["name"] == "Renamed"
    assert body.get("description") is None
    assert body["filter"] == new_filter  # replaced whole: no stage, no tags left
    assert body["version"] == 2
    assert body["created_at"] == segment["created_at"]
    assert body["updated_at"] >= segment["updated_at"]
    assert campaigns_api.call("GET", path, ADMIN).json == body
    assert _outbox(table, TENANT, segment["id"]) == ["SegmentCreated", "SegmentUpdated"]


def test_patch_and_delete_with_stale_if_match_are_412(campaigns_api: Api, table: Any) -> None:
    segment = _create(campaigns_api)
    path = f"/segments/{segment['id']}"
    ok = campaigns_api.call("PATCH", path, ADMIN, {"name": "v2"}, headers={"if-match": '"1"'})
    assert ok.status == 200, ok.text
    before = table_items(table)
    stale = {"if-match": '"1"'}
    assert_problem(campaigns_api.call("PATCH", path, ADMIN, {"name": "v3"}, headers=stale), 412)
    assert_problem(campaigns_api.call("DELETE", path, ADMIN, headers=stale), 412)
    assert table_items(table) == before
    gone = campaigns_api.call("DELETE", path, ADMIN, headers={"if-match": '"2"'})
    assert gone.status == 204, gone.text


def test_delete_answers_204_then_404(campaigns_api: Api, table: Any) -> None:
    segment = _create(campaigns_api)
    path = f"/segments/{segment['id']}"
    reply = campaigns_api.call("DELETE", path, MARKETING)
    assert reply.status == 204, reply.text
    assert reply.text == ""
    assert_problem(campaigns_api.call("GET", path, ADMIN), 404)
    assert_problem(campaigns_api.call("GET", f"{path}/preview", ADMIN), 404)
    assert_problem(campaigns_api.call("PATCH", path, ADMIN, {"name": "x"}), 404)
    assert_problem(campaigns_api.call("DELETE", path, ADMIN), 404)
    assert campaigns_api.call("GET", "/segments", ADMIN).json["items"] == []
    assert _outbox(table, TENANT, segment["id"]) == ["SegmentCreated", "SegmentDeleted"]


def test_idempotency_key_replays_the_same_segment(campaigns_api: Api, table: Any) -> None:
    headers = {"Idempotency-Key": "seg-1"}
    body = {"name": "Once", "filter": FILTER}
    first = campaigns_api.call("POST", "/segments", ADMIN, body, headers=headers)
    assert first.status == 201, first.text
    again = campaigns_api.call("POST", "/segments", ADMIN, body, headers=headers)
    assert again.status == 201, again.text
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]
    listed = campaigns_api.call("GET", "/segments", ADMIN).json["items"]
    assert [s["id"] for s in listed] == [first.json["id"]]
    assert _outbox(table, TENANT, first.json["id"]) == ["SegmentCreated"]


# Roles and tenants --------------------------------------------------------------------------
@pytest.mark.parametrize("role", READERS)
def test_readers_read_but_cannot_write(campaigns_api: Api, table: Any, role: str) -> None:
    segment = _create(campaigns_api)
    path = f"/segments/{segment['id']}"
    user = User(TENANT, (role,))
    assert campaigns_api.call("GET", "/segments", user).status == 200
    assert campaigns_api.call("GET", path, user).status == 200
    assert campaigns_api.call("GET", f"{path}/preview", user).status == 200
    before = table_items(table)
    assert_problem(campaigns_api.call("POST", "/segments", user, {"name": "x"}), 403)
    assert_problem(campaigns_api.call("PATCH", path, user, {"name": "x"}), 403)
    assert_problem(campaigns_api.call("DELETE", path, user), 403)
    assert table_items(table) == before


@pytest.mark.parametrize("role", WRITERS)
def test_admin_and_marketing_write(campaigns_api: Api, role: str) -> None:
    user = User(TENANT, (role,))
    segment = _create(campaigns_api, user)
    path = f"/segments/{segment['id']}"
    assert campaigns_api.call("PATCH", path, user, {"name": "x"}).status == 200
    assert campaigns_api.call("DELETE", path, user).status == 204


def test_another_tenants_segment_is_404(campaigns_api: Api, table: Any) -> None:
    theirs = _create(campaigns_api, GLOBEX, name="Globex only")
    path = f"/segments/{theirs['id']}"
    before = table_items(table)
    assert_problem(campaigns_api.call("GET", path, ADMIN), 404)
    assert_problem(campaigns_api.call("GET", f"{path}/preview", ADMIN), 404)
    assert_problem(campaigns_api.call("PATCH", path, ADMIN, {"name": "mine"}), 404)
    assert_problem(campaigns_api.call("DELETE", path, ADMIN), 404)
    assert table_items(table) == before
    assert campaigns_api.call("GET", "/segments", ADMIN).json["items"] == []
    assert campaigns_api.call("GET", path, GLOBEX).json["name"] == "Globex only"


# Validation ----------------------------------------------------------------------------------
BAD_FILTERS: list[tuple[str, dict[str, Any], str]] = [
    ("min-above-max", {"min_score": 10, "max_score": 5}, "filter"),
    (
        "created-after-not-before",
        {"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        "filter",
    ),
    (
        "created-equal",
        {"created_after": "2026-01-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        "filter",
    ),
    ("tags-nothing", {"tags": {}}, "tags"),
    ("tags-empty-lists", {"tags": {"any": [], "all": [], "none": []}}, "tags"),
    ("tag-in-all-and-none", {"tags": {"all": ["vip"], "none": ["vip"]}}, "tags"),
    ("bad-stage", {"lifecycle_stage": ["prospect"]}, "lifecycle_stage"),
    ("empty-stages", {"lifecycle_stage": []}, "lifecycle_stage"),
    ("bad-consent", {"email_consent": ["yes"]}, "email_consent"),
    ("activity-days-0", {"last_activity_within_days": 0}, "last_activity_within_days"),
    ("activity-days-huge", {"last_activity_within_days": 3651}, "last_activity_within_days"),
    ("naive-datetime", {"created_after": "2026-01-01T00:00:00"}, "created_after"),
    ("score-too-big", {"min_score": 1e10}, "min_score"),
    ("unknown-filter-field", {"score_above": 3}, "score_above"),
    ("too-many-countries", {"country": ["DE"] * 251}, "country"),
    ("too-many-tags", {"tags": {"any": [f"t{i}" for i in range(500)]}}, "tags"),
    ("company-not-ulid", {"company_id": "acme"}, "company_id"),
    # Lists are bounded by their domain: repeating a value cannot multiply a preview's reads.
    ("stages-over-the-enum", {"lifecycle_stage": ["sql"] * 9}, "lifecycle_stage"),
    ("stages-8000", {"lifecycle_stage": ["sql"] * 8000}, "lifecycle_stage"),
    ("consents-over-the-enum", {"email_consent": ["unknown"] * 4}, "email_consent"),
    # Times every preview and send can convert to UTC, numbers DynamoDB can store.
    ("created-after-year-1-east", {"created_after": "0001-01-01T00:00:00+14:00"}, "created_after"),
    (
        "created-before-9999-west",
        {"created_before": "9999-12-31T23:59:59-14:00"},
        "created_before",
    ),
    ("created-before-1970", {"created_before": "1969-12-31T23:59:59Z"}, "created_before"),
    ("created-after-a-number", {"created_after": 1_700_000_000}, "created_after"),
    ("min-score-1e-300", {"min_score": 1e-300}, "min_score"),
    ("max-score-tiny-negative", {"max_score": -1e-16}, "max_score"),
]


@pytest.mark.parametrize(
    ("bad", "field"), [(b, f) for _, b, f in BAD_FILTERS], ids=[i for i, _, _ in BAD_FILTERS]
)
def test_bad_filters_are_422(
    campaigns_api: Api, table: Any, bad: dict[str, Any], field: str
) -> None:
    segment = _create(campaigns_api)
    before = table_items(table)
    reply = campaigns_api.call("POST", "/segments", ADMIN, {"name": "x", "filter": bad})
    assert_problem(reply, 422, field=field)
    patch = campaigns_api.call("PATCH", f"/segments/{segment['id']}", ADMIN, {"filter": bad})
    assert_problem(patch, 422, field=field)
    assert table_items(table) == before


BAD_BODIES: list[tuple[str, dict[str, Any], str | None]] = [
    ("unknown-field", {"name": "x", "colour": "red"}, "colour"),
    ("server-owned-id", {"name": "x", "id": new_ulid()}, "id"),
    ("empty-name", {"name": ""}, "name"),
    ("blank-name", {"name": "   "}, "name"),
    ("long-name", {"name": "n" * 101}, "name"),
    ("no-name", {"filter": {}}, "name"),
    ("long-description", {"name": "x", "description": "d" * 1001}, "description"),
    ("filter-not-object", {"name": "x", "filter": ["lead"]}, "filter"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in BAD_BODIES], ids=[i for i, _, _ in BAD_BODIES]
)
def test_bad_bodies_are_422(
    campaigns_api: Api, table: Any, body: dict[str, Any], field: str | None
) -> None:
    reply = campaigns_api.call("POST", "/segments", ADMIN, body)
    assert_problem(reply, 422, field=field)
    assert table_items(table) == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_scores_are_400(campaigns_api: Api, table: Any, number: str) -> None:
    """Not JSON numbers (RFC 8259): the body screen refuses them before any model."""
    raw = '{"name": "x", "filter": {"min_score": ' + number + "}}"
    reply = campaigns_api.call("POST", "/segments", ADMIN, raw_body=raw)
    assert_problem(reply, 400)
    assert table_items(table) == []


def test_filter_lists_within_their_bound_are_kept_once_each_in_order(
    campaigns_api: Api, table: Any
) -> None:
    body = {
        "lifecycle_stage": ["sql", "lead", "sql", "sql", "lead", "mql", "sql", "sql"],
        "email_consent": ["unknown", "subscribed", "unknown"],
        "country": ["DE", "FR", "DE", "FR", *["US"] * 246],
    }
    segment = _create(campaigns_api, filter=body)
    kept = {
        "lifecycle_stage": ["sql", "lead", "mql"],
        "email_consent": ["unknown", "subscribed"],
        "country": ["DE", "FR", "US"],
    }
    assert segment["filter"] == kept
    path = f"/segments/{segment['id']}"
    assert campaigns_api.call("GET", path, ADMIN).json["filter"] == kept
    patched = campaigns_api.call(
        "PATCH", path, ADMIN, {"filter": {"lifecycle_stage": ["lead"] * 8}}
    )
    assert patched.status == 200, patched.text
    assert patched.json["filter"] == {"lifecycle_stage": ["lead"]}
    every = _create(campaigns_api, filter={"lifecycle_stage": list(LifecycleStage)})
    assert every["filter"]["lifecycle_stage"] == [str(stage) for stage in LifecycleStage]


def test_filter_times_are_kept_in_utc(campaigns_api: Api) -> None:
    body = {
        "created_after": "1970-01-01T05:00:00+05:00",
        "created_before": "9999-12-31T12:59:59-11:00",
    }
    segment = _create(campaigns_api, filter=body)
    assert segment["filter"] == {
        "created_after": "1970-01-01T00:00:00Z",
        "created_before": "9999-12-31T23:59:59Z",
    }
    preview = campaigns_api.call("GET", f"/segments/{segment['id']}/preview", ADMIN)
    assert preview.status == 200, preview.text


@pytest.mark.parametrize(
    "patch",
    [{}, {"name": None}, {"filter": None}, {"name": ""}, {"version": 3}],
    ids=["nothing", "null-name", "null-filter", "empty-name", "server-owned"],
)
def test_bad_patches_are_422(campaigns_api: Api, table: Any, patch: dict[str, Any]) -> None:
    segment = _create(campaigns_api)
    before = table_items(table)
    reply = campaigns_api.call("PATCH", f"/segments/{segment['id']}", ADMIN, patch)
    assert_problem(reply, 422)
    assert table_items(table) == before


def test_malformed_json_is_400_and_bad_ids_are_refused(campaigns_api: Api, table: Any) -> None:
    segment = _create(campaigns_api)
    path = f"/segments/{segment['id']}"
    before = table_items(table)
    assert_problem(campaigns_api.call("POST", "/segments", ADMIN, raw_body='{"name": "x",'), 400)
    assert_problem(campaigns_api.call("PATCH", path, ADMIN, raw_body="{name: x}"), 400)
    for method in ("GET", "DELETE"):
        reply = campaigns_api.call(method, "/segments/not-a-ulid", ADMIN)
        assert_problem(reply, 422, field="segment_id")
    missing = campaigns_api.call("GET", f"/segments/{new_ulid()}", ADMIN)
    assert_problem(missing, 404)
    assert_problem(campaigns_api.call("GET", "/segments", ADMIN, query={"cursor": "xyz"}), 400)
    assert table_items(table) == before


# Previews against brute force --------------------------------------------------------------
DAY = 86_400.0
TAGS = ["vip", "eu", "us", "beta", "churn"]
COUNTRIES = ["DE", "FR", "US", None]
STAGES = ["subscriber", "lead", "mql", "sql", "customer"]
CONSENTS = ["subscribed", "unsubscribed", "unknown"]
TITLES = [None, None, "Engineer", "VP Sales"]


class World:
    """~40 contacts of acme (and a few of globex) of every kind, scored for real."""

    def __init__(self, api: Api, activities: Api, lead_scoring: Any, table: Any) -> None:
        self.api, self.activities, self.lead_scoring, self.table = (
            api,
            activities,
            lead_scoring,
            table,
        )
        self.now = time.time()
        self._contacts: list[dict[str, Any]] | None = None
        self.companies = [self._company(f"Co{i}", f"co{i}.com") for i in range(2)]
        self.owners = ["owner-1", "owner-2"]
        self.excluded: set[str] = set()  # merged and deleted contacts of acme
        self.others: set[str] = set()  # globex's contacts
        rng = random.Random(8)
        for n in range(40):
            self._random_contact(rng, n)
        self._merged_and_deleted()
        for n in range(4):
            self.others.add(self._contact(GLOBEX, email=f"g{n}@example.com", **self._alike()))

    # Building ------------------------------------------------------------------------------
    def _company(self, name: str, domain: str) -> str:
        reply = self.api.call("POST", "/companies", ADMIN, {"name": name, "domain": domain})
        assert reply.status == 201, reply.text
        return str(reply.json["id"])

    def _contact(self, user: User = ADMIN, **body: Any) -> str:
        reply = self.api.call("POST", "/contacts", user, {k: v for k, v in body.items() if v})
        assert reply.status == 201, reply.text
        return str(reply.json["id"])

    @staticmethod
    def _alike() -> dict[str, Any]:
        """What many of acme's contacts are: a tenant's contacts must differ in tenant only."""
        return {"tags": ["vip", "eu"], "owner_id": "owner-1", "lifecycle_stage": "lead"}

    def _random_contact(self, rng: random.Random, n: int) -> None:
        body = {
            "email": f"c{n}@example.com",
            "lifecycle_stage": rng.choice(STAGES),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "country": rng.choice(COUNTRIES),
            "company_id": rng.choice([*self.companies, None]),
            "owner_id": rng.choice([*self.owners, None]),
            "email_consent": rng.choice(CONSENTS),
            "title": rng.choice(TITLES),
        }
        cid = self._contact(**body)
        kind = rng.random()
        if kind < 0.45:
            # Engagement: connected calls some days ago, the newest one scored.
            for _ in range(rng.randint(1, 2)):
                ago = rng.choice([0.5, 3, 20, 90])
                self._call(cid, self.now - ago * DAY - rng.random() * 3600)
            self._score(cid, "ActivityLogged")
        elif body["title"] or body["company_id"]:
            self._score(cid, "ContactCreated")  # fit only
        if rng.random() < 0.4:
            days = rng.choice([10, 100, 400, 800])
            self._set(cid, created_at=format_iso(datetime.now(UTC) - timedelta(days=days)))

    def _call(self, cid: str, at: float) -> None:
        body = {
            "type": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": format_iso(datetime.fromtimestamp(at, UTC)),
        }
        reply = self.activities.call("POST", f"/contacts/{cid}/activities", ADMIN, body)
        assert reply.status == 201, reply.text

    def _score(self, cid: str, detail_type: str) -> None:
        listing = ListQuery("outbox", keys.contact(TENANT, cid)["PK"])
        page = self.table.query(listing, 100, None, sort_prefix=keys.OUTBOX_PREFIX)
        item = next(i for i in page.items if i["detail_type"] == detail_type)
        self.lead_scoring.handler(delivered(item), LambdaContext())

    def _set(self, cid: str, **values: Any) -> None:
        """Attributes the API never lets a client set (an older `created_at`)."""
        names = {f"#{k}": k for k in values}
        self.table.client.update_item(
            TableName=self.table.name,
            Key={"PK": {"S": keys.contact(TENANT, cid)["PK"]}, "SK": {"S": keys.PROFILE}},
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in values),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{k}": to_attr(v) for k, v in values.items()},
        )

    def _merged_and_deleted(self) -> None:
        co = self.companies[0]
        survivor = self._contact(email="survivor@example.com", company_id=co, **self._alike())
        for n in range(2):
            loser = self._contact(
                email=f"loser{n}@example.com", company_id=co, country="DE", **self._alike()
            )
            self._call(loser, self.now - DAY)
            self._score(loser, "ActivityLogged")
            reply = self.api.call("POST", f"/contacts/{survivor}/merge", ADMIN, {"from_id": loser})
            assert reply.status == 200, reply.text
            self.excluded.add(loser)
        deleted = self._contact(email="gone@example.com", country="DE", **self._alike())
        self._call(deleted, self.now - DAY)
        self._score(deleted, "ActivityLogged")
        reply = self.api.call("DELETE", f"/contacts/{deleted}", ADMIN)
        assert reply.status == 204, reply.text
        self.excluded.add(deleted)

    # Brute force ---------------------------------------------------------------------------
    def contacts(self) -> list[dict[str, Any]]:
        """Every contact of acme, read from the table (a Scan: tests only). Read once: the
        previews change no contact."""
        if self._contacts is None:
            items = [from_item(i) for i in tenant_items(self.table, TENANT)]
            self._contacts = [i for i in items if i.get("type") == keys.CONTACT_ITEM]
        return self._contacts

    def expected(self, segment: SegmentFilter, now: float) -> set[str]:
        return {c["id"] for c in self.contacts() if segment.matches(c, now)}


# CPython 3.11 allocates its frame stack in chunks, and a hot call right at a chunk's edge
# maps and unmaps one on every call (`_PyThreadState_BumpFramePointerSlow`): under xdist's
# deeper stack the previews below sat at that edge and took 30 times longer. Running them a
# few frames deeper moves them off it.
_DEPTH = int(os.environ.get("SEGMENTS_TEST_DEPTH", "40"))


def _deeper(levels: int, run: Callable[[], None]) -> None:
    if levels == 0:
        run()
    else:
        _deeper(levels - 1, run)


def filters(world: World) -> list[tuple[str, dict[str, Any]]]:
    """(index expected, filter): every index, alone and with other conditions."""
    co0, co1 = world.companies
    week_ago = format_iso(datetime.now(UTC) - timedelta(days=7))
    year_ago = format_iso(datetime.now(UTC) - timedelta(days=365))
    later = format_iso(datetime.now(UTC) + timedelta(days=1))
    return [
        ("company", {"company_id": co0}),
        ("company", {"company_id": co1, "tags": {"all": ["vip"]}, "min_score": 1}),
        ("company", {"company_id": co0, "owner_id": "owner-1", "lifecycle_stage": ["lead"]}),
        ("owner", {"owner_id": "owner-1"}),
        ("owner", {"owner_id": "owner-2", "country": ["DE", "FR"], "tags": {"none": ["churn"]}}),
        ("tags-all", {"tags": {"all": ["vip"]}}),
        ("tags-all", {"tags": {"all": ["eu", "vip"], "none": ["churn"]}}),
        ("tags-all", {"tags": {"all": ["beta"], "any": ["us", "eu"]}, "lifecycle_stage": ["lead"]}),
        ("stage-score", {"lifecycle_stage": ["lead"]}),
        ("stage-score", {"lifecycle_stage": ["mql", "sql", "customer"]}),
        ("stage-score", {"lifecycle_stage": ["lead", "mql"], "min_score": 5}),
        ("stage-score", {"lifecycle_stage": ["subscriber", "lead"], "max_score": 4}),
        ("stage-score", {"lifecycle_stage": ["lead", "sql"], "min_score": 3, "max_score": 16}),
        # A score alone reads every stage's ranks: one such filter (it is the slowest here).
        ("stage-score", {"min_score": 1, "max_score": 12, "tags": {"any": ["vip"]}}),
        ("tags-any", {"tags": {"any": ["beta", "churn"]}}),
        ("tags-any", {"tags": {"any": ["vip", "us"], "none": ["eu"]}, "country": ["US"]}),
        ("tags-any", {"tags": {"any": ["eu"]}, "last_activity_within_days": 30}),
        ("all-contacts", {}),
        ("all-contacts", {"country": ["US", "FR"]}),
        ("all-contacts", {"created_after": year_ago, "created_before": week_ago}),
        ("all-contacts", {"created_before": week_ago}),
        ("all-contacts", {"created_after": week_ago, "created_before": later}),
        ("all-contacts", {"last_activity_within_days": 7}),
        ("all-contacts", {"email_consent": ["unsubscribed", "unknown"]}),
        ("all-contacts", {"tags": {"none": ["vip"]}}),
    ]


@pytest.fixture
def world(
    api: Api, activity_api: Api, lead_scoring_module: Any, campaigns_api: Api, table: Any
) -> World:
    return World(api, activity_api, lead_scoring_module, table)


def _preview(campaigns_api: Api, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    segment = _create(campaigns_api, filter=body)
    reply = campaigns_api.call("GET", f"/segments/{segment['id']}/preview", ADMIN)
    assert reply.status == 200, reply.text
    return dict(reply.json), time.time()


def test_previews_match_brute_force_on_every_index(world: World, campaigns_api: Api) -> None:
    # The world reaches every branch the filters rely on.
    contacts = world.contacts()
    assert len(contacts) == 41  # 40, and the survivor of the merges
    scored = {SegmentFilter(min_score=1).matches(c, world.now) for c in contacts}
    assert scored == {True, False}
    assert any(c.get("last_activity_at") for c in contacts)
    assert {c.get("lifecycle_stage") for c in contacts} == set(STAGES)
    assert world.excluded
    assert world.others

    _deeper(_DEPTH, lambda: _previews_match(world, campaigns_api))


def _previews_match(world: World, campaigns_api: Api) -> None:
    audience = Audience(world.table)
    nonempty = set()
    for index, body in filters(world):
        segment = SegmentFilter.model_validate(body)
        assert Audience.index_for(segment) == index, body
        preview, now = _preview(campaigns_api, body)
        expected = world.expected(segment, now)
        context = (index, body, preview["count"], len(expected))
        assert preview["index"] == index, context
        assert preview["complete"] is True, context
        assert preview["count"] == len(expected), context
        sample = [c["id"] for c in preview["sample"]]
        assert len(sample) == min(SAMPLE_SIZE, len(expected)), context
        assert len(set(sample)) == len(sample), context
        assert set(sample) <= expected, context
        assert preview["contacts_read"] >= preview["count"], context
        if len(expected) > SAMPLE_SIZE:  # else the sample was all of them
            members = [c["id"] for c in audience.members(TENANT, segment, now)]
            assert len(members) == len(set(members)), context
            assert set(members) == expected, context
            assert not set(members) & (world.excluded | world.others), context
        if expected:
            nonempty.add(index)
    assert nonempty == {"company", "owner", "tags-all", "stage-score", "tags-any", "all-contacts"}


def test_preview_never_shows_merged_deleted_or_other_tenants(
    world: World, campaigns_api: Api, api: Api
) -> None:
    """Filters that every excluded contact matched: none of them is counted or shown. The
    sample is contacts as the contacts API shows them."""
    co = world.companies[0]
    alike = [
        {"tags": {"all": ["vip", "eu"]}, "owner_id": "owner-1"},
        {"company_id": co, "tags": {"all": ["vip"]}},
        {"tags": {"all": ["vip", "eu"]}, "country": ["DE"]},
        {"lifecycle_stage": ["lead"], "min_score": 5, "tags": {"all": ["vip"]}},
        {"lifecycle_stage": ["lead"], "tags": {"any": ["vip"]}},
        {"tags": {"any": ["vip"]}, "last_activity_within_days": 3},
        {"last_activity_within_days": 3, "country": ["DE"]},
    ]
    for n, body in enumerate(alike):
        preview, now = _preview(campaigns_api, body)
        if n == 0:
            assert preview["sample"], body
            for contact in preview["sample"][:2]:
                shown: Reply = api.call("GET", f"/contacts/{contact['id']}", ADMIN)
                assert shown.status == 200, shown.text
                assert contact == {k: v for k, v in shown.json.items() if k in contact}
        shown = {c["id"] for c in preview["sample"]}
        assert not shown & (world.excluded | world.others), body
        assert preview["count"] == len(world.expected(SegmentFilter.model_validate(body), now))
    # Globex sees only its own.
    theirs = campaigns_api.call("POST", "/segments", GLOBEX, {"name": "all"})
    reply = campaigns_api.call("GET", f"/segments/{theirs.json['id']}/preview", GLOBEX)
    assert reply.status == 200, reply.text
    assert {c["id"] for c in reply.json["sample"]} == world.others
    assert reply.json["count"] == len(world.others)


class _SlowDynamo:
    """A DynamoDB client whose every Query takes `delay` seconds (a slow network, a hot
    partition), counting them."""

    def __init__(self, client: Any, delay: float) -> None:
        self._client = client
        self.delay = delay
        self.queries = 0

    def query(self, **params: Any) -> Any:
        self.queries += 1
        time.sleep(self.delay)
        return self._client.query(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _empty_ranks(table: Any, count: int) -> int:
    """Score ranks a tenant's contacts were once put in, none of them holding anyone now (a
    model changed many times): each is one GSI2 partition per stage. The partitions a
    score-only filter reads."""
    ranks = {rank_of(30, fit): True for fit in range(1, count + 1)}
    item = {**keys.scoring_ranks(TENANT), **ranks}
    table.client.put_item(TableName=table.name, Item={k: to_attr(v) for k, v in item.items()})
    return len(LifecycleStage) * (count + 1)  # and rank_of(0, 0), always there


def test_a_preview_over_many_empty_partitions_answers_within_its_time_budget(
    campaigns_api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No partition holds a contact, so no candidate is ever read: the budget is checked at
    every page read, not at every candidate."""
    partitions = _empty_ranks(table, 15)
    assert partitions == 128
    segment = _create(campaigns_api, filter={"max_score": 50})
    function_table = sys.modules["campaigns_api.context"].table
    slow = _SlowDynamo(function_table.client, delay=0.02)
    monkeypatch.setattr(function_table, "client", slow)
    monkeypatch.setattr(audience_module, "PREVIEW_TIME_BUDGET_S", 0.3)

    started = time.monotonic()
    reply = campaigns_api.call("GET", f"/segments/{segment['id']}/preview", ADMIN)
    elapsed = time.monotonic() - started

    assert reply.status == 200, reply.text
    assert reply.json["index"] == "stage-score"
    assert reply.json["complete"] is False  # it stopped: the count is a minimum
    assert (reply.json["count"], reply.json["contacts_read"]) == (0, 0)
    # No Query starts after the budget: at most one per 20 ms of it, and one at its edge.
    assert slow.queries <= 0.3 / 0.02 + 1 < partitions
    assert elapsed < 0.3 + 1.0, elapsed


def test_the_readiness_check_answers_within_its_time_budget(
    campaigns_api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send's readiness check (is anyone in the segment?) stops at the time budget too,
    and then answers "not empty", as it does at its read budget: the dispatcher finds out."""
    partitions = _empty_ranks(table, 15)
    slow = _SlowDynamo(table.client, delay=0.02)
    monkeypatch.setattr(audience_module, "PREVIEW_TIME_BUDGET_S", 0.3)
    audience = Audience(type(table)(slow, table.name))
    segment = SegmentFilter.model_validate({"max_score": 50})

    started = time.monotonic()
    empty = audience.is_empty(TENANT, segment)
    elapsed = time.monotonic() - started

    assert empty is False
    assert slow.queries <= 0.3 / 0.02 + 1 < partitions
    assert elapsed < 0.3 + 1.0, elapsed
    # With time enough, the same check reads every partition and finds nobody.
    monkeypatch.setattr(audience_module, "PREVIEW_TIME_BUDGET_S", 60.0)
    slow.delay, slow.queries = 0.0, 0
    assert audience.is_empty(TENANT, segment) is True
    assert slow.queries == partitions


@pytest.mark.parametrize("budget", ["time", "reads"])
def test_a_preview_that_runs_out_of_budget_says_its_count_is_a_minimum(
    world: World, campaigns_api: Api, monkeypatch: pytest.MonkeyPatch, budget: str
) -> None:
    """However large the segment, the preview answers in time: a count of the contacts read
    so far, marked incomplete."""
    if budget == "time":
        monkeypatch.setattr(audience_module, "PREVIEW_TIME_BUDGET_S", 0.0)
    else:
        monkeypatch.setattr(audience_module, "PREVIEW_READ_BUDGET", 3)
    preview, now = _preview(campaigns_api, {})
    everyone = len(world.expected(SegmentFilter.model_validate({}), now))
    assert everyone > 3
    assert preview["complete"] is False
    # Out of time, no page is read; out of reads, it stops at the read that used them up.
    assert preview["contacts_read"] == (0 if budget == "time" else 3)
    assert preview["count"] <= preview["contacts_read"]
    assert len(preview["sample"]) == preview["count"]
