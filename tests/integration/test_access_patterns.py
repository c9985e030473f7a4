"""Every access pattern in docs/data-model.md makes exactly the AWS calls the document says.

The document is the source of truth: its table is parsed here, so a change of key design
that adds a call fails this test until the document (and its reader) agree.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from tests.conftest import ConsumerFunction, load_consumer, load_function
from tests.support.activities import activities_client, activity_store
from tests.support.api import ROOT, Api, LambdaContext, Reply, User, template_routes
from tests.support.aws_calls import count_calls
from tests.support.campaigns import LongContext, send_queue_record, ses_event
from tests.support.events import delivered
from tests.support.leads import Webhook, create_source

ADMIN = User("acme", ("admin",))
_ROW = re.compile(r"^\| `(?P<id>[a-z-]+)` \|.*\| (?P<calls>\d+) \|$")


def lead_clients(webhook_module: Any) -> list[Any]:
    """The DynamoDB and KMS clients of the lead functions (loaded by their fixtures)."""
    sources = sys.modules["lead_sources_api.context"]
    webhook = webhook_module.intake
    return [sources.table.client, sources.box.kms, webhook.table.client, webhook.box.kms]


def documented_counts() -> dict[str, int]:
    text = (ROOT / "docs" / "data-model.md").read_text()
    rows = (_ROW.match(line.strip()) for line in text.splitlines())
    return {m["id"]: int(m["calls"]) for m in rows if m}


def _contact(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.call("POST", "/contacts", ADMIN, {"email": "a@example.com", **fields})
    assert reply.status == 201, reply.text
    return dict(reply.json)


def _company(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.call("POST", "/companies", ADMIN, {"name": "Acme", "domain": "acme.com", **fields})
    assert reply.status == 201, reply.text
    return dict(reply.json)


def _activity(activities: Api, contact_id: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "note", "body": "a note", **fields}
    reply = activities.call("POST", f"/contacts/{contact_id}/activities", ADMIN, body)
    assert reply.status == 201, reply.text
    return dict(reply.json)


def _deal(contact_id: str) -> str:
    """A deal of the contact's, made by the deal store (the deals function is not measured)."""
    from crm_core.deals.deal_store import DealStore
    from crm_core.events.envelope import Origin
    from crm_core.records.deal import DealCreate

    store = DealStore(sys.modules["contacts_api.context"].table)
    body = DealCreate.model_validate(
        {
            "name": "Renewal",
            "amount": "10.00",
            "currency": "USD",
            "close_date": "2027-03-31",
            "contacts": [{"contact_id": contact_id}],
        }
    )
    return store.create("acme", body, Origin.user("user-1", "req-1")).id


def activity_scenario(api: Api, activities: Api, pattern: str) -> Callable[[], Any]:
    """The activities function's patterns."""
    cid = _contact(api)["id"]
    where = f"/contacts/{cid}/activities"
    if pattern == "log-activity":
        return lambda: activities.call("POST", where, ADMIN, {"type": "note", "body": "x"})
    if pattern == "log-activity-on-deal":
        body = {"type": "note", "body": "x", "deal_id": _deal(cid)}
        return lambda: activities.call("POST", where, ADMIN, body)
    if pattern == "deal-timeline":
        deal_id = _deal(cid)
        other = _contact(api, email="other@example.com")["id"]
        for contact_id in (cid, other, cid):
            _activity(activities, contact_id, deal_id=deal_id)
        query = {"limit": "2"}
        return lambda: activities.call("GET", f"/deals/{deal_id}/timeline", ADMIN, query=query)
    if pattern == "read-activity":
        aid = _activity(activities, cid)["id"]
        return lambda: activities.call("GET", f"{where}/{aid}", ADMIN)
    if pattern == "read-moved-activity":
        loser = _contact(api, email="old@example.com")["id"]
        aid = _activity(activities, loser)["id"]
        api.call("POST", f"/contacts/{cid}/merge", ADMIN, {"from_id": loser})
        activity_store().move_all("acme", loser, cid)
        return lambda: activities.call("GET", f"/contacts/{loser}/activities/{aid}", ADMIN)
    if pattern == "update-activity":
        aid = _activity(activities, cid)["id"]
        return lambda: activities.call("PATCH", f"{where}/{aid}", ADMIN, {"body": "changed"})
    if pattern in ("delete-activity", "delete-latest-activity"):
        older = _activity(activities, cid, occurred_at="2025-01-01T00:00:00Z")["id"]
        newer = _activity(activities, cid)["id"]
        aid = older if pattern == "delete-activity" else newer
        return lambda: activities.call("DELETE", f"{where}/{aid}", ADMIN)
    timelines = {
        "contact-timeline": {"since": "2025-01-01T00:00:00Z"},
        "timeline-of-type": {"type": "call"},
        "timeline-of-types": {"type": "call,email"},
    }
    if pattern in timelines:
        for _ in range(3):
            _activity(activities, cid)
            _activity(activities, cid, type="call", direction="inbound", outcome="busy")
        query = {**timelines[pattern], "limit": "2"}
        return lambda: activities.call("GET", f"/contacts/{cid}/timeline", ADMIN, query=query)
    if pattern in ("list-tasks", "my-tasks"):
        for due in ("2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z"):
            _activity(activities, cid, type="task", subject="Call back", due_at=due, body=None)
        query = {"assignee": "me"} if pattern == "my-tasks" else {"status": "open"}
        return lambda: activities.call("GET", "/tasks", ADMIN, query=query)
    raise AssertionError(f"no scenario for {pattern!r}")


def lead_scenario(lead_api: Api, webhook: Webhook, pattern: str) -> Callable[[], Any]:
    """The lead_sources and lead_webhook functions' patterns."""
    if pattern == "create-lead-source":
        return lambda: lead_api.call("POST", "/lead-sources", ADMIN, {"name": "Web"})
    source = create_source(lead_api, ADMIN)
    path = f"/lead-sources/{source['id']}"
    if pattern == "list-lead-sources":
        return lambda: lead_api.call("GET", "/lead-sources", ADMIN)
    if pattern == "read-lead-source":
        return lambda: lead_api.call("GET", path, ADMIN)
    if pattern == "update-lead-source":
        body = {"name": "Site", "field_map": {"external_id": "meta.id"}}
        return lambda: lead_api.call("PATCH", path, ADMIN, body)
    if pattern == "disable-lead-source":
        return lambda: lead_api.call("DELETE", path, ADMIN)
    if pattern == "rotate-secret":
        return lambda: lead_api.call("POST", f"{path}/rotate-secret", ADMIN)
    lead = {"email": "lead@example.com"}
    # A first delivery opens the secret: the rows count a warm function's deliveries.
    first = webhook.post(source["id"], lead, source["secret"], timestamp=int(time.time()) - 1)
    if pattern == "deliver-lead":
        return lambda: webhook.post(source["id"], {**lead, "n": 2}, source["secret"])
    if pattern == "deliver-lead-again":
        t = int(time.time())
        webhook.post(source["id"], lead, source["secret"], timestamp=t)
        return lambda: webhook.post(source["id"], lead, source["secret"], timestamp=t)
    if pattern == "list-deliveries":
        return lambda: lead_api.call("GET", f"{path}/deliveries", ADMIN)
    if pattern == "deliveries-in-status":
        query = {"status": "accepted"}
        return lambda: lead_api.call("GET", f"{path}/deliveries", ADMIN, query=query)
    if pattern == "read-delivery":
        lead_id = first.json["lead_id"]
        return lambda: lead_api.call("GET", f"{path}/deliveries/{lead_id}", ADMIN)
    raise AssertionError(f"no scenario for {pattern!r}")


def scoring_client() -> Any:
    return sys.modules["scoring_api.context"].table.client


def scoring_scenario(scoring: Api, pattern: str) -> Callable[[], Any]:
    from crm_core.scoring.models import DEFAULT_MODEL

    if pattern == "read-scoring-model":
        scoring.call("PUT", "/scoring/model", ADMIN, DEFAULT_MODEL)
        return lambda: scoring.call("GET", "/scoring/model", ADMIN)
    if pattern == "put-scoring-model":
        scoring.call("PUT", "/scoring/model", ADMIN, DEFAULT_MODEL)
        return lambda: scoring.call("PUT", "/scoring/model", ADMIN, DEFAULT_MODEL)
    raise AssertionError(f"no scenario for {pattern!r}")


SCORING_PATTERNS = {"read-scoring-model", "put-scoring-model"}


class Scoring:
    """What the scoring rows need: the contacts, activities and scoring routes, and
    lead_scoring's handler, to which the tests hand the events the routes wrote."""

    def __init__(
        self, api: Api, activities: Api, scoring: Api, lead_scoring: Any, table: Any
    ) -> None:
        self.api, self.activities, self.scoring = api, activities, scoring
        self.lead_scoring, self.table = lead_scoring, table

    def published(self, contact_id: str, detail_type: str) -> dict[str, Any]:
        """The contact's newest `detail_type` event, as EventBridge delivers it."""
        from crm_core import keys
        from crm_core.pagination import ListQuery

        listing = ListQuery("outbox", keys.contact("acme", contact_id)["PK"])
        page = self.table.query(listing, 100, None, sort_prefix=keys.OUTBOX_PREFIX)
        return delivered(next(i for i in page.items if i["detail_type"] == detail_type))

    def handle(self, event: dict[str, Any]) -> Reply:
        """lead_scoring handles the event; it must have changed a score."""
        result = self.lead_scoring.handler(event, LambdaContext())
        assert result["changed"], result
        return Reply(200, {}, json.dumps(result))

    def call_connected(self, contact_id: str) -> dict[str, Any]:
        """A connected call logged (10 points in the default model): its ActivityLogged."""
        body = {"direction": "outbound", "outcome": "connected"}
        _activity(self.activities, contact_id, type="call", **body)
        return self.published(contact_id, "ActivityLogged")


def lead_scoring_scenario(s: Scoring, pattern: str) -> Callable[[], Any]:
    """Lists by score, a score explained, re-score jobs, and lead_scoring's own calls."""
    if pattern in ("list-by-stage", "list-by-min-score", "list-by-stage-next-page"):
        # Three ranks of the stage: never scored (0.0:0), a fit of 2 without engagement
        # (0.0:2), engagement of a 30-day half-life without fit (30.0:0).
        _contact(s.api)
        titled = _contact(s.api, email="t@example.com", title="Engineer")["id"]
        s.handle(s.published(titled, "ContactCreated"))
        engaged = _contact(s.api, email="e@example.com")["id"]
        s.handle(s.call_connected(engaged))
        query = {"lifecycle_stage": "lead"}
        if pattern == "list-by-min-score":
            query["min_score"] = "1"
        if pattern == "list-by-stage-next-page":
            # The first page ends the engaged contact's rank; the next reads the other two.
            first = s.api.call("GET", "/contacts", ADMIN, query={**query, "limit": "1"})
            query = {**query, "limit": "1", "cursor": first.json["next_cursor"]}
        return lambda: s.api.call("GET", "/contacts", ADMIN, query=query)
    if pattern == "contact-score":
        from crm_core.scoring.models import DEFAULT_MODEL

        s.scoring.call("PUT", "/scoring/model", ADMIN, DEFAULT_MODEL)  # version 1
        cid = _contact(s.api)["id"]
        s.handle(s.call_connected(cid))
        return lambda: s.scoring.call("GET", f"/contacts/{cid}/score", ADMIN)
    if pattern == "post-scoring-job":
        return lambda: s.scoring.call("POST", "/scoring/jobs", ADMIN, {"scope": "all"})
    if pattern in ("list-scoring-jobs", "read-scoring-job"):
        from crm_core.events.envelope import Origin
        from crm_core.scoring.jobs import JobStore

        job_id = JobStore(s.table).start("acme", 1, Origin.system("tests"))
        if pattern == "read-scoring-job":
            return lambda: s.scoring.call("GET", f"/scoring/jobs/{job_id}", ADMIN)
        return lambda: s.scoring.call("GET", "/scoring/jobs", ADMIN)
    if pattern in ("score-activity", "score-first-activity"):
        cid = _contact(s.api, title="VP Sales")["id"]
        first = s.call_connected(cid)
        if pattern == "score-first-activity":
            return lambda: s.handle(first)
        s.handle(first)
        second = s.call_connected(cid)
        return lambda: s.handle(second)
    raise AssertionError(f"no scenario for {pattern!r}")


def campaigns_client() -> Any:
    return sys.modules["campaigns_api.context"].table.client


def _segment(campaigns: Api, segment_filter: dict[str, Any] | None = None) -> str:
    body = {"name": "Segment", "filter": segment_filter or {}}
    reply = campaigns.call("POST", "/segments", ADMIN, body)
    assert reply.status == 201, reply.text
    return str(reply.json["id"])


def segment_scenario(s: Scoring, campaigns: Api, pattern: str) -> Callable[[], Any]:
    """The campaigns function's segment routes; previews of each index the audience uses."""
    if pattern == "create-segment":
        body = {"name": "VIPs", "filter": {"tags": {"all": ["vip"]}}}
        return lambda: campaigns.call("POST", "/segments", ADMIN, body)
    if pattern == "create-segment-idempotent":
        headers = {"Idempotency-Key": "seg-1"}
        return lambda: campaigns.call("POST", "/segments", ADMIN, {"name": "x"}, headers=headers)
    if pattern == "list-segments":
        _segment(campaigns)
        _segment(campaigns)
        return lambda: campaigns.call("GET", "/segments", ADMIN)
    path = f"/segments/{_segment(campaigns)}"
    if pattern == "read-segment":
        return lambda: campaigns.call("GET", path, ADMIN)
    if pattern == "patch-segment":
        body = {"name": "Renamed", "filter": {"country": ["DE"]}}
        return lambda: campaigns.call("PATCH", path, ADMIN, body)
    if pattern == "delete-segment":
        return lambda: campaigns.call("DELETE", path, ADMIN)
    company = _company(s.api)["id"]
    _contact(s.api, owner_id="owner-1", tags=["vip", "eu"], company_id=company)
    _contact(s.api, email="b@example.com", owner_id="owner-1", tags=["vip"], title="CTO")
    # A second score rank of the tenant, 0.0:2 (a title's fit), besides 0.0:0.
    titled = _contact(s.api, email="t@example.com", title="Engineer")["id"]
    s.handle(s.published(titled, "ContactCreated"))
    filters: dict[str, dict[str, Any]] = {
        "preview-all-contacts": {"country": ["DE"]},
        "preview-company": {"company_id": company},
        "preview-owner": {"owner_id": "owner-1", "tags": {"any": ["vip"]}},
        "preview-tags-all": {"tags": {"all": ["vip", "eu"]}},
        "preview-stage-score": {"lifecycle_stage": ["lead", "mql"]},
        "preview-min-score": {"lifecycle_stage": ["lead"], "min_score": 1},
        "preview-tags-any": {"tags": {"any": ["vip", "eu"]}},
    }
    if pattern in filters:
        where = f"/segments/{_segment(campaigns, filters[pattern])}/preview"
        return lambda: campaigns.call("GET", where, ADMIN)
    raise AssertionError(f"no scenario for {pattern!r}")


# The rows of docs/data-model.md served by the campaigns function (segments).
SEGMENT_PATTERNS = {
    "create-segment",
    "create-segment-idempotent",
    "list-segments",
    "read-segment",
    "patch-segment",
    "delete-segment",
    "preview-all-contacts",
    "preview-company",
    "preview-owner",
    "preview-tags-all",
    "preview-stage-score",
    "preview-min-score",
    "preview-tags-any",
}
SENDER = "acme.news@mail.example.com"  # acme's namespace on mail_setup's verified SES domain
POSTAL = "1 Main Street, Springfield 12345"
CAMPAIGN = {
    "name": "Spring",
    "from_address": SENDER,
    "subject": "Hello {{ first_name | default('there') }}",
    "html": "<p>Hi {{ first_name }}</p>",
    "text": "Hi {{ first_name }}",
}
CAMPAIGN_CONSUMERS = ("campaign_dispatcher", "campaign_sender", "email_events")


@pytest.fixture(scope="module")
def campaign_functions(contacts_module: ModuleType) -> dict[str, Any]:
    """The campaign functions besides CampaignsFunction, loaded after contacts."""
    loaded: dict[str, Any] = {name: load_consumer(name) for name in CAMPAIGN_CONSUMERS}
    return {**loaded, "unsubscribe": load_function("unsubscribe")}


class Campaigns:
    """What the campaign rows need: the contacts and campaigns routes, the other campaign
    functions (handed what their triggers would give them), and every AWS client they use."""

    def __init__(self, api: Api, campaigns: Api, table: Any, functions: dict[str, Any]) -> None:
        self.api, self.campaigns, self.table = api, campaigns, table
        self.dispatcher = functions["campaign_dispatcher"]
        self.sender = functions["campaign_sender"]
        self.email_events = functions["email_events"]
        self.unsubscribe = functions["unsubscribe"]
        self.link = Api(self.unsubscribe.handler, template_routes("UnsubscribeFunction"))
        self.context = sys.modules["campaigns_api.context"]
        # Each process's one KMS call (the unsubscribe links' secret) is out of the counts.
        for holder in (self.context, self.sender.context, self.unsubscribe):
            holder.token_key.secret  # noqa: B018 - derives and keeps it

    def clients(self) -> list[Any]:
        """The clients besides DynamoDB's of the campaigns function: Scheduler, SESv2,
        Cognito, SQS, and the other campaign functions' DynamoDB clients."""
        return [
            self.context.schedules.client,
            self.context.ses(),
            self.context.teammates.client,
            self.dispatcher.context.table.client,
            self.dispatcher.context.sqs,
            self.sender.context.table.client,
            self.sender.context.sender.ses,
            self.email_events.context.table.client,
            self.unsubscribe.table.client,
        ]

    def forget_senders(self) -> None:
        """The campaigns function's answers about SES identities (kept 5 minutes) and sender
        namespaces dropped: the rows count the GetEmailIdentity calls and the namespace
        claim of a function that has not asked yet."""
        self.context.senders.forget()

    # The scene ------------------------------------------------------------------------------
    def contacts(self, n: int) -> list[str]:
        from crm_core.contacts.store import ContactStore
        from crm_core.events.envelope import Origin
        from crm_core.records.contact import ContactCreate

        store, origin = ContactStore(self.table), Origin.system("tests")
        made = []
        for _ in range(n):
            email = f"{uuid.uuid4().hex[:12]}@example.com"
            body = ContactCreate(email=email, email_consent="subscribed")
            made.append(store.create("acme", body, origin).id)
        return made

    def settings(self) -> None:
        reply = self.campaigns.call("PUT", "/settings/email", ADMIN, {"postal_address": POSTAL})
        assert reply.status == 200, reply.text

    def draft(self) -> str:
        body = {**CAMPAIGN, "segment_id": _segment(self.campaigns)}
        reply = self.campaigns.call("POST", "/campaigns", ADMIN, body)
        assert reply.status == 201, reply.text
        return str(reply.json["id"])

    def ready(self, contacts: int) -> str:
        """A draft that may be sent: the email settings, `contacts` subscribed contacts, and
        a segment of everyone."""
        self.settings()
        self.contacts(contacts)
        return self.draft()

    def post(self, campaign_id: str, action: str, body: Any = None) -> Reply:
        return self.campaigns.call("POST", f"/campaigns/{campaign_id}/{action}", ADMIN, body)

    def sending(self, contacts: int) -> str:
        campaign_id = self.ready(contacts)
        reply = self.post(campaign_id, "send")
        assert reply.status == 202, reply.text
        return campaign_id

    def item(self, campaign_id: str) -> dict[str, Any]:
        found = self.table.get(keys.campaign("acme", campaign_id))
        assert found is not None
        return dict(found)

    def published(self, partition: dict[str, str], detail_type: str) -> dict[str, Any]:
        """The newest `detail_type` event of the partition, as EventBridge delivers it."""
        from crm_core.pagination import ListQuery

        listing = ListQuery("outbox", partition["PK"])
        page = self.table.query(listing, 100, None, sort_prefix=keys.OUTBOX_PREFIX)
        return delivered(next(i for i in page.items if i["detail_type"] == detail_type))

    def campaign_event(self, campaign_id: str, detail_type: str) -> dict[str, Any]:
        return self.published(keys.campaign("acme", campaign_id), detail_type)

    # The asynchronous functions, handed what their triggers give them ---------------------
    def dispatch(self, event: dict[str, Any]) -> Reply:
        result = self.dispatcher.handler(event, LongContext())
        assert result["result"] in ("dispatched", "requeued"), result
        return Reply(200, {}, json.dumps(result))

    def dispatched(self, contacts: int) -> str:
        campaign_id = self.sending(contacts)
        self.dispatch(self.campaign_event(campaign_id, "CampaignSendRequested"))
        return campaign_id

    def message(self, campaign_id: str, contact_ids: list[str]) -> dict[str, Any]:
        """A send-queue message of the campaign's send naming `contact_ids`."""
        body = {
            "tenant_id": "acme",
            "campaign_id": campaign_id,
            "dispatch_id": self.item(campaign_id)["dispatch_id"],
            "contact_ids": contact_ids,
        }
        return send_queue_record(body)

    def send(self, record: dict[str, Any]) -> Reply:
        """The sender handles one send-queue message (an invocation of its own)."""
        response = self.sender.handler({"Records": [record]}, LongContext())
        return Reply(500 if response["batchItemFailures"] else 200, {}, json.dumps(response))

    def handled(self, function: ConsumerFunction, event: dict[str, Any]) -> Reply:
        result = function.handler(event, LambdaContext())
        assert result["outcome"] == "recorded", result
        return Reply(200, {}, json.dumps(result))

    def sent(self) -> tuple[str, str, str]:
        """One recipient mailed (the campaign's first of two): (campaign, contact, the
        message id SES gave)."""
        campaign_id = self.dispatched(2)
        contact_id = self.recipient_ids(campaign_id)[0]
        assert self.send(self.message(campaign_id, [contact_id])).status == 200
        recipient = self.table.get(keys.recipient("acme", campaign_id, contact_id))
        assert recipient is not None
        assert recipient["status"] == "sent", recipient
        return campaign_id, contact_id, str(recipient["message_id"])

    def email_of(self, contact_id: str) -> str:
        contact = self.table.get(keys.contact("acme", contact_id))
        assert contact is not None
        return str(contact["email"])

    def recipient_ids(self, campaign_id: str) -> list[str]:
        reply = self.campaigns.call("GET", f"/campaigns/{campaign_id}/recipients", ADMIN)
        return [r["contact_id"] for r in reply.json["items"]]

    def token(self, contact_id: str, campaign_id: str | None) -> str:
        from crm_core.campaigns import unsubscribe_tokens

        secret = self.unsubscribe.token_key.secret
        return unsubscribe_tokens.issue(secret, "acme", contact_id, campaign_id)


def _in_a_month() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()


def campaign_scenario(c: Campaigns, pattern: str) -> Callable[[], Reply]:
    """The campaigns routes, the unsubscribe link, and one unit of work of each asynchronous
    campaign function."""
    if pattern in ("create-campaign", "create-campaign-idempotent"):
        body = {**CAMPAIGN, "segment_id": _segment(c.campaigns)}
        headers = {"Idempotency-Key": "camp-1"} if pattern.endswith("-idempotent") else None
        c.forget_senders()
        return lambda: c.campaigns.call("POST", "/campaigns", ADMIN, body, headers=headers)
    if pattern == "list-campaigns":
        c.draft()
        c.draft()
        return lambda: c.campaigns.call("GET", "/campaigns", ADMIN)
    if pattern in ("read-email-settings", "put-email-settings"):
        c.settings()
        if pattern == "read-email-settings":
            return lambda: c.campaigns.call("GET", "/settings/email", ADMIN)
        body = {"postal_address": POSTAL, "company_name": "Acme"}
        return lambda: c.campaigns.call("PUT", "/settings/email", ADMIN, body)
    if pattern in ("read-campaign", "patch-campaign"):
        path = f"/campaigns/{c.draft()}"
        if pattern == "read-campaign":
            return lambda: c.campaigns.call("GET", path, ADMIN)
        body = {"name": "Autumn", "subject": "Hi {{ first_name }}"}
        return lambda: c.campaigns.call("PATCH", path, ADMIN, body)
    if pattern in ("schedule-campaign", "send-campaign-now", "test-send-campaign"):
        campaign_id = c.ready(1)
        c.forget_senders()
        if pattern == "send-campaign-now":
            return lambda: c.post(campaign_id, "send")
        if pattern == "test-send-campaign":
            # To the caller's own verified address (the sample token's): no user pool lookup.
            return lambda: c.post(campaign_id, "test", {"to": "sam@acme.example"})
        body = {"send_at": _in_a_month(), "timezone": "Europe/Paris"}
        return lambda: c.post(campaign_id, "schedule", body)
    if pattern == "cancel-campaign":
        campaign_id = c.ready(1)
        assert c.post(campaign_id, "schedule", {"send_at": _in_a_month()}).status == 200
        return lambda: c.post(campaign_id, "cancel")
    if pattern in ("pause-campaign", "resume-campaign"):
        campaign_id = c.sending(1)
        if pattern == "resume-campaign":
            assert c.post(campaign_id, "pause").status == 200
        return lambda: c.post(campaign_id, pattern.removesuffix("-campaign"))
    if pattern in ("list-recipients", "list-recipients-by-status"):
        path = f"/campaigns/{c.dispatched(3)}/recipients"
        query = {"status": "queued"} if pattern == "list-recipients-by-status" else None
        return lambda: c.campaigns.call("GET", path, ADMIN, query=query)
    if pattern in ("unsubscribe", "unsubscribe-page"):
        contact_id = c.contacts(1)[0]
        query = {"token": c.token(contact_id, c.draft())}
        if pattern == "unsubscribe-page":
            return lambda: c.link.call("GET", "/unsubscribe", None, query=query)
        one_click = "List-Unsubscribe=One-Click"
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return lambda: c.link.call(
            "POST", "/unsubscribe", None, raw_body=one_click, query=query, headers=headers
        )
    if pattern == "dispatch-send-now":
        campaign_id = c.sending(150)
        requested = c.campaign_event(campaign_id, "CampaignSendRequested")
        return lambda: c.dispatch(requested)
    if pattern == "dispatch-scheduled":
        campaign_id = c.ready(3)
        assert c.post(campaign_id, "schedule", {"send_at": _in_a_month()}).status == 200
        due = {
            "kind": "campaign_due",
            "tenant_id": "acme",
            "campaign_id": campaign_id,
            "dispatch_id": c.item(campaign_id)["dispatch_id"],
        }
        return lambda: c.dispatch(due)
    if pattern == "dispatch-resume":
        campaign_id = c.dispatched(3)
        assert c.post(campaign_id, "pause").status == 200
        assert c.post(campaign_id, "resume").status == 200
        resumed = c.campaign_event(campaign_id, "CampaignResumed")
        return lambda: c.dispatch(resumed)
    if pattern in ("send-message", "send-last-message"):
        campaign_id = c.dispatched(4 if pattern == "send-message" else 1)
        record = c.message(campaign_id, c.recipient_ids(campaign_id)[:3])
        return lambda: c.send(record)
    kinds = {"ses-delivery": "Delivery", "ses-hard-bounce": "Bounce", "ses-complaint": "Complaint"}
    if pattern in kinds:
        campaign_id, contact_id, message_id = c.sent()
        email = c.email_of(contact_id)
        event = ses_event(kinds[pattern], "acme", campaign_id, contact_id, email, message_id)
        return lambda: c.handled(c.email_events, event)
    if pattern == "contact-unsubscribed":
        campaign_id, contact_id, _ = c.sent()
        query = {"token": c.token(contact_id, campaign_id)}
        reply = c.link.call("POST", "/unsubscribe", None, raw_body="", query=query)
        assert reply.status == 200, reply.text
        event = c.published(keys.contact("acme", contact_id), "ContactUnsubscribed")
        return lambda: c.handled(c.email_events, event)
    raise AssertionError(f"no scenario for {pattern!r}")


# The rows of docs/data-model.md of the campaign functions (issue 8).
CAMPAIGN_PATTERNS = {
    "create-campaign",
    "create-campaign-idempotent",
    "list-campaigns",
    "read-campaign",
    "patch-campaign",
    "schedule-campaign",
    "send-campaign-now",
    "cancel-campaign",
    "pause-campaign",
    "resume-campaign",
    "test-send-campaign",
    "list-recipients",
    "list-recipients-by-status",
    "read-email-settings",
    "put-email-settings",
    "unsubscribe",
    "unsubscribe-page",
    "dispatch-send-now",
    "dispatch-scheduled",
    "dispatch-resume",
    "send-message",
    "send-last-message",
    "ses-delivery",
    "ses-hard-bounce",
    "ses-complaint",
    "contact-unsubscribed",
}
# The rows of docs/data-model.md that scoring serves, or that need contacts scored.
LEAD_SCORING_PATTERNS = {
    "list-by-stage",
    "list-by-min-score",
    "list-by-stage-next-page",
    "contact-score",
    "list-scoring-jobs",
    "read-scoring-job",
    "post-scoring-job",
    "score-activity",
    "score-first-activity",
}
# The rows of docs/data-model.md served by the lead functions.
LEAD_PATTERNS = {
    "create-lead-source",
    "list-lead-sources",
    "read-lead-source",
    "update-lead-source",
    "disable-lead-source",
    "rotate-secret",
    "list-deliveries",
    "deliveries-in-status",
    "read-delivery",
    "deliver-lead",
    "deliver-lead-again",
}
# The rows of docs/data-model.md served by the activities function.
ACTIVITY_PATTERNS = {
    "log-activity",
    "log-activity-on-deal",
    "deal-timeline",
    "read-activity",
    "read-moved-activity",
    "update-activity",
    "delete-activity",
    "delete-latest-activity",
    "contact-timeline",
    "timeline-of-type",
    "timeline-of-types",
    "list-tasks",
    "my-tasks",
}


def scenario(api: Api, activities: Api, pattern: str) -> Callable[[], Any]:
    """Set up what the pattern needs; return the one request to measure."""
    if pattern in ACTIVITY_PATTERNS:
        return activity_scenario(api, activities, pattern)
    if pattern == "create-contact":
        company = _company(api)
        body = {"email": "b@example.com", "tags": ["vip", "eu"], "company_id": company["id"]}
        return lambda: api.call("POST", "/contacts", ADMIN, body)
    if pattern == "create-contact-idempotent":
        headers = {"Idempotency-Key": "k-1"}
        return lambda: api.call("POST", "/contacts", ADMIN, {"email": "c@x.com"}, headers=headers)
    if pattern == "replay-idempotent":
        headers = {"Idempotency-Key": "k-2"}
        api.call("POST", "/contacts", ADMIN, {"email": "d@x.com"}, headers=headers)
        return lambda: api.call("POST", "/contacts", ADMIN, {"email": "d@x.com"}, headers=headers)
    if pattern == "read-contact":
        cid = _contact(api)["id"]
        return lambda: api.call("GET", f"/contacts/{cid}", ADMIN)
    if pattern == "update-contact":
        cid = _contact(api, tags=["a"])["id"]
        body = {"email": "new@example.com", "tags": ["b"], "title": "CTO"}
        return lambda: api.call("PATCH", f"/contacts/{cid}", ADMIN, body)
    if pattern == "delete-contact":
        cid = _contact(api, tags=["a"])["id"]
        return lambda: api.call("DELETE", f"/contacts/{cid}", ADMIN)
    if pattern == "merge-contacts":
        target = _contact(api)["id"]
        loser = _contact(api, email="other@example.com", tags=["x"])["id"]
        return lambda: api.call("POST", f"/contacts/{target}/merge", ADMIN, {"from_id": loser})
    if pattern == "read-merged-contact":
        target = _contact(api)["id"]
        loser = _contact(api, email="other@example.com")["id"]
        api.call("POST", f"/contacts/{target}/merge", ADMIN, {"from_id": loser})
        return lambda: api.call("GET", f"/contacts/{loser}", ADMIN)
    lists = {
        "list-contacts": {},
        "list-by-owner": {"owner_id": "owner-1"},
        "list-by-tag": {"tag": "vip"},
        "find-by-email": {"email": "a@example.com"},
    }
    if pattern in lists:
        _contact(api, owner_id="owner-1", tags=["vip"])
        _contact(api, email="e@example.com", owner_id="owner-1", tags=["vip"])
        return lambda: api.call("GET", "/contacts", ADMIN, query=lists[pattern])
    if pattern in ("list-by-company", "company-contacts"):
        company = _company(api)
        _contact(api, company_id=company["id"])
        if pattern == "company-contacts":
            return lambda: api.call("GET", f"/companies/{company['id']}/contacts", ADMIN)
        query = {"company_id": company["id"]}
        return lambda: api.call("GET", "/contacts", ADMIN, query=query)
    if pattern == "create-company":
        return lambda: api.call("POST", "/companies", ADMIN, {"name": "Globex", "domain": "g.com"})
    if pattern == "read-company":
        co = _company(api)["id"]
        return lambda: api.call("GET", f"/companies/{co}", ADMIN)
    if pattern == "update-company":
        co = _company(api)["id"]
        return lambda: api.call("PATCH", f"/companies/{co}", ADMIN, {"domain": "acme.io"})
    if pattern == "delete-company":
        co = _company(api)["id"]
        return lambda: api.call("DELETE", f"/companies/{co}", ADMIN)
    if pattern == "list-companies":
        _company(api)
        return lambda: api.call("GET", "/companies", ADMIN, query={"name_prefix": "ac"})
    raise AssertionError(f"docs/data-model.md names {pattern!r}, which this test cannot run")


# The rows of docs/data-model.md served by the deals function (issue 19).
DEAL_PATTERNS = {
    "create-deal",
    "move-deal",
    "read-deal",
    "deal-history",
    "list-deals-of-stage",
    "list-deals-of-contact",
    "board",
    "forecast",
    "forecast-as-of",
    "put-currencies",
    "patch-pipeline",
}


def deal_scenario(api: Api, deals: Api, pattern: str) -> Callable[[], Any]:
    """The deals function's patterns; a tenant with a few deals, moved, in two currencies."""
    cid = _contact(api)["id"]
    deals.call("PUT", "/settings/currencies", ADMIN, {"base": "EUR", "rates": {"USD": "0.92"}})

    def new(**fields: Any) -> dict[str, Any]:
        body = {"name": "D", "amount": "100.00", "currency": "USD", "close_date": "2027-03-31"}
        reply = deals.call("POST", "/deals", ADMIN, {**body, **fields})
        assert reply.status == 201, reply.text
        return dict(reply.json)

    first = new(contacts=[{"contact_id": cid}])
    new(currency="EUR", stage_id="proposal", close_date="2027-04-30")
    deals.call("PATCH", f"/deals/{first['id']}", ADMIN, {"stage_id": "needs-analysis"})
    path = f"/deals/{first['id']}"
    if pattern == "create-deal":
        body = {
            "name": "N",
            "amount": "5.00",
            "currency": "USD",
            "close_date": "2027-05-31",
            "contacts": [{"contact_id": cid}],
        }
        return lambda: deals.call("POST", "/deals", ADMIN, body)
    if pattern == "move-deal":
        return lambda: deals.call("PATCH", path, ADMIN, {"stage_id": "proposal"})
    if pattern == "read-deal":
        return lambda: deals.call("GET", path, ADMIN)
    if pattern == "deal-history":
        return lambda: deals.call("GET", f"{path}/history", ADMIN)
    if pattern == "list-deals-of-stage":
        query = {"stage_id": "needs-analysis"}
        return lambda: deals.call("GET", "/deals", ADMIN, query=query)
    if pattern == "list-deals-of-contact":
        return lambda: deals.call("GET", "/deals", ADMIN, query={"contact_id": cid})
    if pattern == "board":
        return lambda: deals.call("GET", "/pipelines/default/board", ADMIN)
    if pattern in ("forecast", "forecast-as-of"):
        query = {"from": "2027-01", "to": "2027-06"}
        if pattern == "forecast-as-of":
            query["as_of"] = first["created_at"]
        return lambda: deals.call("GET", "/forecast", ADMIN, query=query)
    if pattern == "put-currencies":
        body = {"base": "EUR", "rates": {"USD": "0.93"}}
        return lambda: deals.call("PUT", "/settings/currencies", ADMIN, body)
    if pattern == "patch-pipeline":
        from crm_core.deals.pipeline_models import default_pipeline

        stages = default_pipeline()["stages"]
        stages[0]["probability"] = 15
        return lambda: deals.call("PATCH", "/pipelines/default", ADMIN, {"stages": stages})
    raise AssertionError(f"no scenario for {pattern!r}")


# The rows of docs/data-model.md served by the cases function (issue 20).
CASE_PATTERNS = {
    "create-case",
    "create-case-in-queue",
    "change-case",
    "reply-to-case",
    "read-case",
    "list-cases-of-status",
    "list-cases-breached",
    "case-conversation",
    "put-sla-policy",
}


def case_scenario(api: Api, cases: Api, pattern: str) -> Callable[[], Any]:
    """The cases function's patterns; a tenant with a contact, a queue and a few cases."""
    cid = _contact(api)["id"]
    queue = cases.call(
        "POST",
        "/queues",
        ADMIN,
        {"name": "Q", "members": ["ann", "bob"], "assignment": "round_robin"},
    ).json

    def new(**fields: Any) -> dict[str, Any]:
        reply = cases.call("POST", "/cases", ADMIN, {"subject": "S", **fields})
        assert reply.status == 201, reply.text
        return dict(reply.json)

    case = new(contact_id=cid, priority="urgent")
    new(queue_id=queue["id"])
    path = f"/cases/{case['id']}"
    if pattern == "create-case":
        return lambda: cases.call("POST", "/cases", ADMIN, {"subject": "N", "contact_id": cid})
    if pattern == "create-case-in-queue":
        body = {"subject": "N", "queue_id": queue["id"]}
        return lambda: cases.call("POST", "/cases", ADMIN, body)
    if pattern == "change-case":
        return lambda: cases.call("PATCH", path, ADMIN, {"status": "open", "priority": "high"})
    if pattern == "reply-to-case":
        body = {"body": "Hello", "public": True, "status": "pending"}
        return lambda: cases.call("POST", f"{path}/replies", ADMIN, body)
    if pattern == "read-case":
        return lambda: cases.call("GET", path, ADMIN)
    if pattern == "list-cases-of-status":
        return lambda: cases.call("GET", "/cases", ADMIN, query={"status": "new"})
    if pattern == "list-cases-breached":
        return lambda: cases.call("GET", "/cases", ADMIN, query={"sla": "breached"})
    if pattern == "case-conversation":
        return lambda: cases.call("GET", f"{path}/conversation", ADMIN)
    if pattern == "put-sla-policy":
        from crm_core.cases.sla_policy import DEFAULT_POLICY

        body = {**DEFAULT_POLICY, "warn_at_percent": 80}
        return lambda: cases.call("PUT", "/settings/sla", ADMIN, body)
    raise AssertionError(f"no scenario for {pattern!r}")


# The rows of the satisfaction link (the csat function).
CSAT_PATTERNS = {"rate-case", "csat-page"}


@pytest.fixture(scope="module")
def csat_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("csat")


def csat_scenario(cases: Api, csat: ModuleType, pattern: str) -> Callable[[], Any]:
    """A solved case and its satisfaction link; the function's one KMS call (the links'
    secret, once per process) is out of the counts."""
    from crm_core.cases import csat_tokens

    reply = cases.call("POST", "/cases", ADMIN, {"subject": "S"})
    assert reply.status == 201, reply.text
    case_id = reply.json["id"]
    solved = cases.call("PATCH", f"/cases/{case_id}", ADMIN, {"status": "solved"})
    assert solved.status == 200, solved.text
    query = {"token": csat_tokens.issue(csat.token_key.secret, "acme", case_id)}
    link = Api(csat.handler, template_routes("CsatFunction"))
    if pattern == "csat-page":
        return lambda: link.call("GET", "/csat", None, query=query)
    if pattern == "rate-case":
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return lambda: link.call(
            "POST", "/csat", None, raw_body="score=4", query=query, headers=headers
        )
    raise AssertionError(f"no scenario for {pattern!r}")


# The rows of email: case_mailer's reply, inbound_mail's new message and threaded answer.
MAIL_PATTERNS = {"mail-case-reply", "receive-new-email", "receive-reply-email"}


class Handled:
    """A consumer's answer, as the test reads a route's: it succeeded."""

    status, text = 200, ""


def mail_scenario(
    api: Api, cases: Api, table: Any, pattern: str
) -> tuple[Callable[[], Any], list[Any]]:
    """A contact's case in a queue with a mailbox, and its agent's public reply. The KMS
    calls of the secrets (once per process) are made before the count. Also the clients."""
    import email as email_package
    import email.policy

    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from infra.ops.mail_cli import ses_receipt_event
    from tests.support.events import outbox_events

    mailer, inbound = load_consumer("case_mailer"), load_consumer("inbound_mail")
    for key in (mailer.context.reply_key, mailer.context.csat_key, inbound.context.reply_key):
        key._secret = None
        assert key.secret
    sys.modules["cases_api.context"].namespaces.forget()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=inbound.context.intake.bucket)
    cid = _contact(api, email="ada@example.com")["id"]
    body = {"name": "Q", "members": ["ann", "bob"], "assignment": "round_robin", "mailbox": "q"}
    queue = cases.call("POST", "/queues", ADMIN, body).json
    case = cases.call(
        "POST", "/cases", ADMIN, {"subject": "S", "contact_id": cid, "queue_id": queue["id"]}
    ).json
    reply = {"body": "Hello", "public": True}
    assert cases.call("POST", f"/cases/{case['id']}/replies", ADMIN, reply).status == 201
    (replied,) = outbox_events(table, keys.case_partition("acme", case["id"]), "CaseReplied")
    clients = [
        mailer.context.table.client,
        mailer.context.mailer.ses,
        inbound.context.intake.s3,
        inbound.context.table.client,
    ]

    def handled(run: Callable[[], Any]) -> Callable[[], Handled]:
        def measured() -> Handled:
            run()
            return Handled()

        return measured

    if pattern == "mail-case-reply":
        return handled(lambda: mailer.handler(replied, LambdaContext())), clients
    mailer.handler(replied, LambdaContext())
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages[-1]
    got = email_package.message_from_string(sent.raw_data, policy=email.policy.default)
    message = email_package.message.EmailMessage()
    message["From"] = "ada@example.com"
    message["Subject"] = "Re: S" if pattern == "receive-reply-email" else "New"
    message["To"] = str(got["Reply-To"]) if pattern == "receive-reply-email" else queue["address"]
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    message.set_content("Thanks")
    stored = uuid.uuid4().hex
    s3.put_object(
        Bucket=inbound.context.intake.bucket, Key=f"inbound/{stored}", Body=bytes(message)
    )
    event = ses_receipt_event(stored, [str(message["To"])])
    return handled(lambda: inbound.handler(event, LambdaContext())), clients


# The report aggregator's rows (issue 21).
REPORT_PATTERNS = {"aggregate-activity", "report-activities"}


def report_scenario(
    api: Api, activities: Api, table: Any, pattern: str
) -> tuple[Callable[[], Any], list[Any]]:
    """An activity logged; the report aggregator applies its event (the tenant's zone read
    before, as a warm process has it), or the report is read."""
    from tests.support.events import outbox_events

    reports = load_consumer("report_aggregator")
    reports.context.zones._known.clear()
    reports.context.zones.of("acme")
    cid = _contact(api)["id"]
    _activity(activities, cid)
    (logged,) = outbox_events(table, keys.contact("acme", cid)["PK"], "ActivityLogged")

    def measured() -> Handled:
        assert reports.handler(logged, LambdaContext()) == "applied"
        return Handled()

    if pattern == "aggregate-activity":
        return measured, [reports.context.table.client]
    measured()
    api_module = load_function("reports")
    reading = Api(api_module.handler, template_routes("ReportsFunction"))
    query = {"from": "2022-01-01", "to": "2026-12-31", "period": "day"}
    return (
        lambda: reading.call("GET", "/reports/activities", ADMIN, query=query),
        [sys.modules["reports_api.context"].table.client],
    )


def test_document_lists_the_patterns() -> None:
    assert len(documented_counts()) >= 31
    assert set(documented_counts()) >= (
        ACTIVITY_PATTERNS
        | LEAD_PATTERNS
        | SCORING_PATTERNS
        | LEAD_SCORING_PATTERNS
        | SEGMENT_PATTERNS
        | CAMPAIGN_PATTERNS
        | DEAL_PATTERNS
        | CASE_PATTERNS
        | CSAT_PATTERNS
        | MAIL_PATTERNS
        | REPORT_PATTERNS
    )


@pytest.mark.parametrize(("pattern", "expected"), sorted(documented_counts().items()))
def test_calls_per_operation(
    api: Api,
    activity_api: Api,
    lead_api: Api,
    webhook: Webhook,
    lead_webhook_module: Any,
    scoring_api: Api,
    lead_scoring_module: Any,
    campaigns_api: Api,
    table: Any,
    request: pytest.FixtureRequest,
    pattern: str,
    expected: int,
) -> None:
    more: list[Any] = []
    if pattern in CAMPAIGN_PATTERNS:
        # Only these rows pay for the mail setup and the other campaign functions.
        request.getfixturevalue("mail_setup")
        functions = request.getfixturevalue("campaign_functions")
        campaigns = Campaigns(api, campaigns_api, table, functions)
        measured = campaign_scenario(campaigns, pattern)
        more = campaigns.clients()
    elif pattern in SEGMENT_PATTERNS:
        scoring = Scoring(api, activity_api, scoring_api, lead_scoring_module, table)
        measured = segment_scenario(scoring, campaigns_api, pattern)
    elif pattern in LEAD_PATTERNS:
        measured = lead_scenario(lead_api, webhook, pattern)
    elif pattern in DEAL_PATTERNS:
        deals = request.getfixturevalue("deals_api")
        measured = deal_scenario(api, deals, pattern)
        more = [sys.modules["deals_api.context"].table.client]
    elif pattern in CASE_PATTERNS:
        cases = request.getfixturevalue("cases_api")
        measured = case_scenario(api, cases, pattern)
        more = [sys.modules["cases_api.context"].table.client]
    elif pattern in CSAT_PATTERNS:
        request.getfixturevalue("mail_setup")  # the links' KMS key
        cases = request.getfixturevalue("cases_api")
        csat = request.getfixturevalue("csat_module")
        measured = csat_scenario(cases, csat, pattern)
        more = [sys.modules["cases_api.context"].table.client, csat.table.client]
    elif pattern in MAIL_PATTERNS:
        request.getfixturevalue("mail_setup")  # the KMS key and the sending domain
        cases = request.getfixturevalue("cases_api")
        measured, more = mail_scenario(api, cases, table, pattern)
        more.append(sys.modules["cases_api.context"].table.client)
    elif pattern in REPORT_PATTERNS:
        measured, more = report_scenario(api, activity_api, table, pattern)
    elif pattern in SCORING_PATTERNS:
        measured = scoring_scenario(scoring_api, pattern)
    elif pattern in LEAD_SCORING_PATTERNS:
        scoring = Scoring(api, activity_api, scoring_api, lead_scoring_module, table)
        measured = lead_scoring_scenario(scoring, pattern)
    else:
        measured = scenario(api, activity_api, pattern)
    with count_calls(
        table.client,
        activities_client(),
        *lead_clients(lead_webhook_module),
        scoring_client(),
        lead_scoring_module.context.table.client,
        campaigns_client(),
        *more,
    ) as log:
        reply = measured()
    redirects = ("read-merged-contact", "read-moved-activity")
    assert reply.status < 400 or pattern in redirects, reply.text
    assert log.count == expected, f"{pattern}: {log.calls}"
