"""Re-score jobs: a model change re-scores every contact of the tenant with the new version,
in runs that resume from a saved cursor; once per version, whatever is delivered twice,
after a crash, with little time left, or overtaken by a newer model.

Each test changes the model through PUT /scoring/model, takes the ScoringModelChanged (then
ScoringJobProgressed) events written to the tenant's scoring outbox, and hands them to the
lead_scoring function's handler as EventBridge delivers them.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from crm_core import keys
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.dynamo import Item, key_attrs
from crm_core.pagination import ListQuery
from crm_core.records.contact import ContactCreate
from crm_core.scores.decay import DAY
from crm_core.scores.state import ScoreState
from crm_core.scoring.rescore import STOP_MARGIN_MS
from crm_core.table import Table
from tests.support.activities import Stores
from tests.support.api import Api, LambdaContext, User
from tests.support.events import delivered
from tests.support.faults import Crashing

if TYPE_CHECKING:
    # Not imported when a worker process loads this module: conftest resets the endpoint.
    from tests.conftest import ConsumerFunction

TENANT = "acme"
ADMIN = User(TENANT, ("admin",), sub="admin-1")
VIEWER = User(TENANT, ("viewer",), sub="viewer-1")
CLOSE = 0.01
PAGE = 4  # contacts per page of a job, so that a few contacts make several pages
# The model the tests change to: other points, another half-life, other fit rules; its
# thresholds are out of reach so that no re-score moves a stage (but where a test wants it).
NEW_RULES: dict[str, Any] = {
    "behaviour": [
        {"id": "any-call", "activity_type": "call", "points": 7},
        {
            "id": "meeting-held",
            "activity_type": "meeting",
            "conditions": {"outcome": "completed"},
            "points": 30,
        },
    ],
    "fit": [
        {"id": "british", "field": "country", "operator": "eq", "value": "gb", "points": 9},
        {"id": "vp", "field": "title", "operator": "contains", "value": "vp", "points": 4},
    ],
    "half_life_days": 10,
    "thresholds": {"mql": 500, "sql": 900},
}
# A model of fit rules alone: what a re-score gives is then the same whether or not the
# behaviour rules count a contact's history.
FIT_ONLY: dict[str, Any] = {**NEW_RULES, "behaviour": []}
CALL = (ActivityType.CALL, {"direction": "outbound", "outcome": "connected"})
MEETING = (
    ActivityType.MEETING,
    {
        "starts_at": "2026-11-20T10:00:00Z",
        "ends_at": "2026-11-20T11:00:00Z",
        "outcome": "completed",
    },
)


class Plenty(LambdaContext):
    """An invocation with most of its 15 minutes left."""

    def get_remaining_time_in_millis(self) -> int:
        return 800_000


class Hurried(LambdaContext):
    """An invocation with less time left than a run needs to take another page."""

    def get_remaining_time_in_millis(self) -> int:
        return STOP_MARGIN_MS - 1


@pytest.fixture
def function(lead_scoring_module: ConsumerFunction, table: Table) -> ConsumerFunction:
    return lead_scoring_module


@pytest.fixture
def paged(function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(function.context.rescorer, "page_size", PAGE)


@pytest.fixture
def crm(table: Table, function: ConsumerFunction, scoring_api: Api) -> Crm:
    return Crm(table, function, scoring_api)


class Crm(Stores):
    """The test table's contacts, the tenant's model and jobs, and the lead_scoring
    function their events are delivered to."""

    def __init__(self, table: Table, function: ConsumerFunction, scoring_api: Api) -> None:
        super().__init__(table)
        self.function = function
        self.scoring_api = scoring_api

    # Contacts, scored by their events as they come -----------------------------------------
    def person(self, tenant: str = TENANT, **fields: Any) -> str:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        contact = self.contacts.create(tenant, ContactCreate(email=email, **fields), self.origin)
        self.deliver(self.outbox(keys.contact(tenant, contact.id)["PK"], "ContactCreated")[-1])
        return contact.id

    def people(self, count: int, tenant: str = TENANT) -> list[str]:
        """`count` contacts, each different: a title, a country, calls and meetings or none,
        all scored with the model of the moment."""
        contacts = []
        for n in range(count):
            fields: dict[str, Any] = {}
            if n % 2:
                fields["country"] = "GB"
            if n % 3 == 0:
                fields["title"] = "VP Marketing"
            contact_id = self.person(tenant, **fields)
            for k in range(n % 4):
                kind, fields = MEETING if k % 2 else CALL
                self.score(contact_id, kind, fields, hours_ago=k + 1, tenant=tenant)
            contacts.append(contact_id)
        return contacts

    def score(
        self,
        contact_id: str,
        activity_type: ActivityType,
        fields: dict[str, Any],
        *,
        hours_ago: float = 0,
        tenant: str = TENANT,
    ) -> Any:
        at = datetime.now(UTC) - timedelta(hours=hours_ago)
        stored = validate_fields(activity_type, copy.deepcopy(fields))
        activity = self.activities.log(tenant, contact_id, activity_type, stored, at, self.origin)
        for outbox in self.outbox(keys.contact(tenant, contact_id)["PK"], "ActivityLogged"):
            if json.loads(outbox["detail"])["data"]["activity"]["id"] == activity["id"]:
                return self.deliver(outbox)
        raise AssertionError("no ActivityLogged")

    # The model and its jobs -----------------------------------------------------------------
    def put_model(self, user: User = ADMIN, **changes: Any) -> int:
        body = {**copy.deepcopy(NEW_RULES), **changes}
        reply = self.scoring_api.call("PUT", "/scoring/model", user, body)
        assert reply.status == 200, reply.text
        version: int = reply.json["version"]
        return version

    def model_changed(self, version: int, tenant: str = TENANT) -> Item:
        """The outbox item of the ScoringModelChanged of `version`."""
        (item,) = [
            i
            for i in self.outbox(keys.scoring_model(tenant)["PK"], "ScoringModelChanged")
            if json.loads(i["detail"])["data"]["version"] == version
        ]
        return item

    def progress(self, job_id: str | None = None, tenant: str = TENANT) -> list[dict[str, Any]]:
        """The data of each ScoringJobProgressed (of `job_id`), oldest first."""
        items = self.outbox(keys.scoring_model(tenant)["PK"], "ScoringJobProgressed")
        found = [json.loads(i["detail"])["data"] for i in items]
        return [d for d in found if job_id is None or d["job_id"] == job_id]

    def progress_items(self, job_id: str, tenant: str = TENANT) -> list[Item]:
        items = self.outbox(keys.scoring_model(tenant)["PK"], "ScoringJobProgressed")
        return [i for i in items if json.loads(i["detail"])["data"]["job_id"] == job_id]

    def job(self, job_id: str, user: User = VIEWER) -> dict[str, Any]:
        reply = self.scoring_api.call("GET", f"/scoring/jobs/{job_id}", user)
        assert reply.status == 200, reply.text
        job: dict[str, Any] = reply.json
        return job

    def jobs(self, user: User = VIEWER) -> list[dict[str, Any]]:
        reply = self.scoring_api.call("GET", "/scoring/jobs", user)
        assert reply.status == 200, reply.text
        assert reply.json["next_cursor"] is None
        items: list[dict[str, Any]] = reply.json["items"]
        return items

    # Delivery --------------------------------------------------------------------------------
    def deliver(self, outbox_item: Item, context: LambdaContext | None = None) -> Any:
        return self.function.handler(delivered(outbox_item), context or Plenty())

    def forget_deliveries(self, tenant: str = TENANT) -> None:
        """Delete the consumer's idempotency records, as their TTL does after 7 days."""
        partition = keys.idempotency_partition(tenant)
        for item in self.table.query_all(None, partition, sort_below="\U0010ffff"):
            key = key_attrs({"PK": item["PK"], "SK": item["SK"]})
            self.table.client.delete_item(TableName=self.table.name, Key=key)

    # What is in the table -----------------------------------------------------------------
    def outbox(self, partition: str, detail_type: str) -> list[Item]:
        listing = ListQuery("partition", partition)
        found: list[Item] = []
        cursor = None
        while True:
            page = self.table.query(
                listing, 100, cursor, newest_first=False, sort_prefix=keys.OUTBOX_PREFIX
            )
            found += page.items
            if not page.next_cursor:
                return [i for i in found if i["detail_type"] == detail_type]
            cursor = page.next_cursor

    def item(self, contact_id: str, tenant: str = TENANT) -> Item:
        item: Item | None = self.table.get(keys.contact(tenant, contact_id))
        assert item is not None
        return item

    def state(self, contact_id: str, tenant: str = TENANT) -> ScoreState:
        return ScoreState.of(self.item(contact_id, tenant))

    def versions(self, contacts: list[str]) -> list[int]:
        return [self.state(c).model_version for c in contacts]


def expected_fit(item: Item) -> dict[str, int]:
    """NEW_RULES' fit rules, said again plainly."""
    fit = {}
    if (item.get("country") or "").lower() == "gb":
        fit["british"] = 9
    if "vp" in (item.get("title") or "").lower():
        fit["vp"] = 4
    return fit


def assert_rescored(crm: Crm, contacts: list[str], version: int) -> None:
    """Each contact scored with `version` of NEW_RULES (or FIT_ONLY): its fit as the rules
    say, its engagement kept in the model's half-life."""
    for contact_id in contacts:
        item = crm.item(contact_id)
        state = ScoreState.of(item)
        assert state.model_version == version, contact_id
        assert state.half_life_days == NEW_RULES["half_life_days"]
        assert dict(state.fit_rules) == expected_fit(item)
        assert state.fit == sum(expected_fit(item).values())
        assert state.rebuilt_before > 0
        assert set(state.behaviour) <= {"any-call", "meeting-held"}


# A model change ---------------------------------------------------------------------------
def test_a_model_change_rescores_every_contact_in_one_run(crm: Crm) -> None:
    contacts = crm.people(10)
    assert set(crm.versions(contacts)) == {0}
    version = crm.put_model()

    result = crm.deliver(crm.model_changed(version))

    assert result == {
        "job_id": result["job_id"],
        "status": "done",
        "seen": 10,
        "rescored": 10,
        "stopped_by_another": False,
    }
    assert_rescored(crm, contacts, version)
    job = crm.job(result["job_id"])
    assert job["model_version"] == version
    assert job["status"] == "done"
    assert (job["contacts_seen"], job["contacts_rescored"], job["runs"]) == (10, 10, 1)
    assert job["finished_at"] is not None
    assert job["finished_at"] >= job["started_at"]
    assert job["superseded_by"] is None
    assert [j["id"] for j in crm.jobs()] == [result["job_id"]]
    assert crm.progress() == [
        {
            "job_id": result["job_id"],
            "model_version": version,
            "status": "done",
            "contacts_seen": 10,
            "contacts_rescored": 10,
        }
    ]
    # Each score that moved says the re-score moved it.
    for contact_id in contacts:
        for outbox in crm.outbox(keys.contact(TENANT, contact_id)["PK"], "LeadScoreChanged"):
            data = json.loads(outbox["detail"])["data"]
            if data["model_version"] == version:
                assert data["cause"]["detail_type"] == "Rescored"


def test_a_rescore_gives_each_contact_the_new_rules_points(crm: Crm) -> None:
    contacts = crm.people(6)
    version = crm.put_model()

    crm.deliver(crm.model_changed(version))

    now = time.time()
    for contact_id in contacts:
        activities = [
            a
            for a in crm.activities.timeline(TENANT, contact_id, 100, None).items
            if a["activity_type"] in ("call", "meeting")
        ]
        points = {"call": 7, "meeting": 30}
        expected = sum(
            points[a["activity_type"]]
            * 2 ** (-(now - datetime.fromisoformat(a["occurred_at"]).timestamp()) / (10 * DAY))
            for a in activities
        )
        assert crm.state(contact_id).engagement_at(now) == pytest.approx(expected, abs=CLOSE)


def test_the_same_model_change_twice_makes_one_job(crm: Crm) -> None:
    contacts = crm.people(3)
    version = crm.put_model()
    event = crm.model_changed(version)
    first = crm.deliver(event)

    again = crm.deliver(event)
    crm.forget_deliveries()
    # Past the consumer's records: the claim on the version finds the first job.
    replay = crm.deliver(event)

    assert again == first
    assert replay == {
        "job_id": first["job_id"],
        "status": "done",
        "seen": 0,
        "rescored": 0,
        "stopped_by_another": False,
    }
    assert [j["id"] for j in crm.jobs()] == [first["job_id"]]
    job = crm.job(first["job_id"])
    assert (job["contacts_seen"], job["contacts_rescored"], job["runs"]) == (3, 3, 1)
    assert len(crm.progress()) == 1
    assert_rescored(crm, contacts, version)


def test_contacts_already_at_the_version_are_seen_not_rescored(crm: Crm) -> None:
    contacts = crm.people(4)
    version = crm.put_model()
    # Its next event rebuilds one contact early; a contact created now starts at the version.
    crm.score(contacts[0], *CALL)
    newcomer = crm.person(country="GB")
    assert crm.versions([contacts[0], newcomer]) == [version, version]

    result = crm.deliver(crm.model_changed(version))

    assert (result["seen"], result["rescored"]) == (5, 3)
    assert_rescored(crm, contacts, version)
    state = crm.state(newcomer)
    assert (state.model_version, dict(state.fit_rules)) == (version, {"british": 9})


# Runs: crashes, time, newer models ---------------------------------------------------------
@pytest.mark.usefixtures("paged")
def test_a_crash_midway_then_a_redelivery_finishes_the_job(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = crm.people(10)  # pages of 4, 4 and 2
    version = crm.put_model(**FIT_ONLY)
    event = crm.model_changed(version)
    # Transactions: the job's start, the first page's 4 rebuilds and its cursor, then 2 of
    # the second page's rebuilds; the 3rd one times out.
    monkeypatch.setattr(
        function.context.table, "client", Crashing(function.context.table.client, after=8)
    )

    with pytest.raises(TimeoutError):
        crm.deliver(event)

    monkeypatch.undo()
    (job,) = crm.jobs()
    assert job["status"] == "running"
    assert (job["contacts_seen"], job["contacts_rescored"], job["runs"]) == (4, 4, 1)
    assert sorted(crm.versions(contacts)) == [0] * 4 + [version] * 6

    result = crm.deliver(event)  # EventBridge retries the failed invocation

    assert result["job_id"] == job["id"]
    assert result["status"] == "done"
    assert_rescored(crm, contacts, version)
    job = crm.job(job["id"])
    assert job["status"] == "done"
    # Every contact seen once. The two rebuilt just before the crash were not counted: the
    # crash lost the count of the page in hand, and the retry found them done already.
    assert (job["contacts_seen"], job["contacts_rescored"], job["runs"]) == (10, 8, 2)
    assert [p["status"] for p in crm.progress(job["id"])] == ["done"]
    # Each rebuilt contact wrote one change of its score, none twice.
    for contact_id in contacts:
        events = crm.outbox(keys.contact(TENANT, contact_id)["PK"], "LeadScoreChanged")
        rescored = [e for e in events if json.loads(e["detail"])["data"]["model_version"]]
        assert len(rescored) <= 1


@pytest.mark.usefixtures("paged")
def test_a_run_short_of_time_pauses_and_its_event_continues_it(crm: Crm) -> None:
    contacts = crm.people(10)
    version = crm.put_model()

    first = crm.deliver(crm.model_changed(version), Hurried())

    assert (first["status"], first["seen"], first["rescored"]) == ("running", PAGE, PAGE)
    job_id = first["job_id"]
    job = crm.job(job_id)
    assert (job["status"], job["contacts_seen"], job["runs"]) == ("running", PAGE, 1)
    assert job["finished_at"] is None
    assert crm.versions(contacts).count(version) == PAGE
    (paused,) = crm.progress(job_id)
    assert (paused["status"], paused["contacts_seen"], paused["contacts_rescored"]) == (
        "running",
        PAGE,
        PAGE,
    )

    # Each run's event starts the next one, until the job is done.
    results = []
    while crm.progress(job_id)[-1]["status"] == "running":
        results.append(crm.deliver(crm.progress_items(job_id)[-1], Hurried()))
        assert len(results) < 5

    assert [(r["status"], r["seen"]) for r in results] == [("running", 4), ("done", 2)]
    assert [p["status"] for p in crm.progress(job_id)] == ["running", "running", "done"]
    job = crm.job(job_id)
    assert (job["status"], job["contacts_seen"], job["contacts_rescored"], job["runs"]) == (
        "done",
        10,
        10,
        3,
    )
    assert_rescored(crm, contacts, version)
    # A done job's event is the end of it.
    done = crm.deliver(crm.progress_items(job_id)[-1])
    assert done == {"job_id": job_id, "status": "done"}


@pytest.mark.usefixtures("paged")
def test_a_newer_model_supersedes_a_running_job(crm: Crm) -> None:
    contacts = crm.people(10)
    older = crm.put_model(half_life_days=20)
    paused = crm.deliver(crm.model_changed(older), Hurried())
    assert paused["status"] == "running"
    newer = crm.put_model()

    superseded = crm.deliver(crm.progress_items(paused["job_id"])[-1])
    finished = crm.deliver(crm.model_changed(newer))

    assert superseded["status"] == "superseded"
    old_job = crm.job(paused["job_id"])
    assert (old_job["status"], old_job["superseded_by"]) == ("superseded", newer)
    assert old_job["finished_at"] is not None
    assert old_job["contacts_seen"] == PAGE
    assert [p["status"] for p in crm.progress(paused["job_id"])] == ["running", "superseded"]
    # The newer job re-scores every contact, those the older job did included.
    assert (finished["status"], finished["seen"], finished["rescored"]) == ("done", 10, 10)
    assert_rescored(crm, contacts, newer)
    assert [j["id"] for j in crm.jobs()] == [finished["job_id"], paused["job_id"]]
    assert [j["model_version"] for j in crm.jobs()] == [newer, older]


@pytest.mark.usefixtures("paged")
def test_a_job_run_after_a_newer_model_took_over_stops_at_once(crm: Crm) -> None:
    contacts = crm.people(6)
    older = crm.put_model(half_life_days=20)
    newer = crm.put_model()

    done = crm.deliver(crm.model_changed(newer))
    late = crm.deliver(crm.model_changed(older))  # the older event arrives last

    assert done["status"] == "done"
    assert (late["status"], late["seen"], late["rescored"]) == ("superseded", 0, 0)
    assert_rescored(crm, contacts, newer)
    statuses = {j["model_version"]: j["status"] for j in crm.jobs()}
    assert statuses == {newer: "done", older: "superseded"}


def test_a_rescore_that_lifts_a_contact_across_a_threshold_qualifies_it(crm: Crm) -> None:
    british = crm.person(country="GB")
    other = crm.person(country="FR")
    version = crm.put_model(
        **{
            **FIT_ONLY,
            "fit": [
                {"id": "british", "field": "country", "operator": "eq", "value": "GB", "points": 45}
            ],
            "thresholds": {"mql": 40, "sql": 80},
        }
    )

    result = crm.deliver(crm.model_changed(version))

    assert result["status"] == "done"
    assert crm.item(british)["lifecycle_stage"] == "mql"
    assert crm.item(other)["lifecycle_stage"] == "lead"
    outbox = crm.outbox(keys.contact(TENANT, british)["PK"], "LeadQualified")
    (qualified,) = [json.loads(i["detail"])["data"] for i in outbox]
    assert (qualified["threshold"], qualified["model_version"]) == ("mql", version)
    job = crm.job(result["job_id"])
    assert job["contacts_rescored"] == 2
    assert job["contacts_seen"] >= 2


# Tenants -------------------------------------------------------------------------------------
def test_jobs_are_the_tenants_own(crm: Crm) -> None:
    ours = crm.people(3)
    theirs = crm.people(2, tenant="globex")
    globex_admin = User("globex", ("admin",))
    version = crm.put_model(user=globex_admin)
    result = crm.deliver(crm.model_changed(version, tenant="globex"))

    assert (result["seen"], result["rescored"]) == (2, 2)
    assert set(crm.versions(ours)) == {0}
    assert {crm.state(c, "globex").model_version for c in theirs} == {version}
    job_id = result["job_id"]
    assert crm.jobs() == []
    missing = crm.scoring_api.call("GET", f"/scoring/jobs/{job_id}", VIEWER)
    assert missing.status == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert [j["id"] for j in crm.jobs(User("globex", ("viewer",)))] == [job_id]
    assert crm.job(job_id, User("globex", ("viewer",)))["status"] == "done"


# Jobs asked for: POST /scoring/jobs --------------------------------------------------------
def request_job(crm: Crm, body: dict[str, Any], user: User = ADMIN, **kw: Any) -> dict[str, Any]:
    reply = crm.scoring_api.call("POST", "/scoring/jobs", user, body, **kw)
    assert reply.status == 202, reply.text
    assert reply.headers["location"] == f"/scoring/jobs/{reply.json['id']}"
    job: dict[str, Any] = reply.json
    return job


def test_a_requested_job_of_scope_all_rebuilds_every_contact(crm: Crm) -> None:
    contacts = crm.people(4)

    job = request_job(crm, {"scope": "all"})

    assert (job["scope"], job["status"], job["model_version"]) == ("all", "running", 0)
    assert (job["contacts_seen"], job["runs"]) == (0, 0)
    (started,) = crm.progress(job["id"])
    assert started["status"] == "running"
    result = crm.deliver(crm.progress_items(job["id"])[-1])
    assert (result["status"], result["seen"], result["rescored"]) == ("done", 4, 4)
    assert all(crm.state(c).rebuilt_before > 0 for c in contacts)
    assert crm.job(job["id"])["runs"] == 1


def test_rebuilding_every_contact_with_the_same_model_keeps_their_scores(crm: Crm) -> None:
    contacts = crm.people(4)
    now = time.time()
    before = [crm.state(c).engagement_at(now) for c in contacts]
    assert any(before)

    job = request_job(crm, {"scope": "all"})
    crm.deliver(crm.progress_items(job["id"])[-1])

    after = [crm.state(c).engagement_at(now) for c in contacts]
    assert after == pytest.approx(before, abs=CLOSE)


def test_a_requested_stale_job_scores_only_contacts_not_at_the_version(crm: Crm) -> None:
    scored = crm.people(3)
    never = crm.contacts.create(TENANT, ContactCreate(email="new@example.com"), crm.origin).id
    assert not crm.state(never).scored  # its ContactCreated not delivered (yet)

    job = request_job(crm, {})
    result = crm.deliver(crm.progress_items(job["id"])[-1])

    assert job["scope"] == "stale"
    assert (result["status"], result["seen"], result["rescored"]) == ("done", 4, 1)
    assert crm.state(never).model_version == 0
    assert set(crm.versions(scored)) == {0}


@pytest.mark.parametrize("role", ["sales", "support", "viewer"])
def test_only_admins_and_marketing_request_jobs(crm: Crm, role: str) -> None:
    reply = crm.scoring_api.call("POST", "/scoring/jobs", User(TENANT, (role,)), {})
    assert reply.status == 403
    assert crm.jobs() == []
    assert request_job(crm, {}, User(TENANT, ("marketing",)))["status"] == "running"


def test_a_request_repeated_with_its_idempotency_key_makes_one_job(crm: Crm) -> None:
    headers = {"Idempotency-Key": "rescore-1"}
    first = request_job(crm, {"scope": "all"}, headers=headers)
    again = request_job(crm, {"scope": "all"}, headers=headers)

    assert again["id"] == first["id"]
    assert [j["id"] for j in crm.jobs()] == [first["id"]]


# One running job per tenant and scope -------------------------------------------------------
def post_job(crm: Crm, body: dict[str, Any], user: User = ADMIN, **kw: Any) -> Any:
    return crm.scoring_api.call("POST", "/scoring/jobs", user, body, **kw)


def test_twenty_requests_while_a_job_runs_answer_that_job(crm: Crm) -> None:
    crm.people(3)
    first = post_job(crm, {"scope": "all"})
    assert first.status == 202, first.text

    again = [post_job(crm, {"scope": "all"}) for _ in range(19)]

    for reply in again:
        assert reply.status == 200, reply.text
        assert reply.json["id"] == first.json["id"]
        assert reply.headers["location"] == f"/scoring/jobs/{first.json['id']}"
        assert reply.json["status"] == "running"
    assert [j["id"] for j in crm.jobs()] == [first.json["id"]]
    # One run was asked for: the first job's announcement, and no other.
    assert len(crm.progress()) == 1


def test_a_request_after_the_job_finished_starts_a_new_one(crm: Crm) -> None:
    crm.people(3)
    first = request_job(crm, {"scope": "all"})
    done = crm.deliver(crm.progress_items(first["id"])[-1])
    assert done["status"] == "done"

    second = request_job(crm, {"scope": "all"})

    assert second["id"] != first["id"]
    assert [j["id"] for j in crm.jobs()] == [second["id"], first["id"]]


def test_stale_and_all_each_have_their_own_running_job(crm: Crm) -> None:
    crm.people(2)
    everyone = request_job(crm, {"scope": "all"})
    stale = request_job(crm, {"scope": "stale"})
    assert stale["id"] != everyone["id"]

    for body, job in (({"scope": "all"}, everyone), ({}, stale), ({"scope": "stale"}, stale)):
        reply = post_job(crm, body)
        assert (reply.status, reply.json["id"]) == (200, job["id"]), reply.text
    assert {j["id"] for j in crm.jobs()} == {everyone["id"], stale["id"]}


def test_a_stalled_job_no_longer_holds_its_scope(crm: Crm) -> None:
    from crm_core.scoring.jobs import STALLED_AFTER

    contacts = crm.people(3)
    stalled = request_job(crm, {"scope": "all"})
    # Its run ended in the DLQ: the job's item stopped moving long ago.
    long_ago = datetime.now(UTC) - STALLED_AFTER - timedelta(minutes=1)
    key = keys.scoring_job(TENANT, stalled["id"])
    crm.table.client.update_item(
        TableName=crm.table.name,
        Key=key_attrs(key),
        UpdateExpression="SET updated_at = :t",
        ExpressionAttributeValues={":t": {"S": long_ago.strftime("%Y-%m-%dT%H:%M:%S.000Z")}},
    )

    fresh = request_job(crm, {"scope": "all"})

    assert fresh["id"] != stalled["id"]
    old = crm.job(stalled["id"])
    assert (old["status"], old["superseded_by"]) == ("superseded", 0)
    assert old["finished_at"] is not None
    # Its run, re-driven from the DLQ later, does nothing; the new job does the work.
    late = crm.deliver(crm.progress_items(stalled["id"])[0])
    assert (late["status"], late["seen"]) == ("superseded", 0)
    result = crm.deliver(crm.progress_items(fresh["id"])[-1])
    assert (result["status"], result["seen"], result["rescored"]) == ("done", 3, 3)
    assert all(crm.state(c).rebuilt_before > 0 for c in contacts)


def test_a_job_that_is_slow_but_moving_still_holds_its_scope(crm: Crm) -> None:
    from crm_core.scoring.jobs import STALLED_AFTER

    running = request_job(crm, {"scope": "all"})
    recently = datetime.now(UTC) - STALLED_AFTER + timedelta(minutes=1)
    crm.table.client.update_item(
        TableName=crm.table.name,
        Key=key_attrs(keys.scoring_job(TENANT, running["id"])),
        UpdateExpression="SET updated_at = :t",
        ExpressionAttributeValues={":t": {"S": recently.strftime("%Y-%m-%dT%H:%M:%S.000Z")}},
    )
    reply = post_job(crm, {"scope": "all"})
    assert (reply.status, reply.json["id"]) == (200, running["id"])


def test_a_model_change_joins_a_stale_job_of_its_version_already_running(crm: Crm) -> None:
    """PUT /scoring/model, then POST /scoring/jobs before the model's event arrives: the
    event finds the requested job (same scope, same version) and runs it; no second job."""
    contacts = crm.people(4)
    version = crm.put_model()
    requested = request_job(crm, {})
    assert requested["model_version"] == version

    result = crm.deliver(crm.model_changed(version))

    assert result["job_id"] == requested["id"]
    assert (result["status"], result["rescored"]) == ("done", 4)
    assert [j["id"] for j in crm.jobs()] == [requested["id"]]
    assert_rescored(crm, contacts, version)
    # A second delivery of the event still finds that job.
    crm.forget_deliveries()
    assert crm.deliver(crm.model_changed(version))["job_id"] == requested["id"]


@pytest.mark.usefixtures("paged")
def test_a_model_change_takes_over_a_requested_stale_job_of_an_older_model(crm: Crm) -> None:
    contacts = crm.people(6)
    older = request_job(crm, {})
    assert older["model_version"] == 0
    version = crm.put_model()

    result = crm.deliver(crm.model_changed(version))

    assert result["job_id"] != older["id"]
    assert (result["status"], result["rescored"]) == ("done", 6)
    assert_rescored(crm, contacts, version)
    old = crm.job(older["id"])
    assert (old["status"], old["superseded_by"]) == ("superseded", version)
    # With the newer job done, the scope is free again.
    assert post_job(crm, {}).status == 202


def test_concurrent_requests_start_one_job(crm: Crm) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from crm_core.events.envelope import Origin
    from crm_core.scoring.jobs import JobScope, JobStore

    store = JobStore(crm.table)

    def ask(n: int) -> tuple[str, bool]:
        job, started = store.request(TENANT, 0, JobScope.ALL, Origin.user(f"u{n}", f"r{n}"))
        return job.id, started

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))

    assert len({job_id for job_id, _ in answers}) == 1
    assert sum(started for _, started in answers) == 1
    assert len(crm.jobs()) == 1
