"""lead_processor: a received lead becomes a contact (new, or the person's existing one with
blanks filled) and a form_submission on its timeline, or is kept `rejected` with a reason;
exactly once, whatever is delivered twice, at once, or after a crash.

Each test stores leads as the webhook does (LeadStore.accept), takes the LeadReceived event
that wrote to the lead's outbox, and hands it to the function's handler as EventBridge
delivers it.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from crm_core import keys
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.companies.store import CompanyStore
from crm_core.dynamo import Item, from_item
from crm_core.events.envelope import Origin
from crm_core.events.leads import LeadReceived
from crm_core.leads.models import LeadSourceCreate, LeadStatus
from crm_core.leads.processor import LeadProcessor
from crm_core.leads.secret_box import SecretBox
from crm_core.leads.sources import LeadSourceStore
from crm_core.leads.store import LeadStore, Received
from crm_core.pagination import ListQuery
from crm_core.records.company import CompanyCreate
from crm_core.records.contact import Contact, ContactCreate
from crm_core.table import Table
from tests.support.activities import Stores
from tests.support.api import LambdaContext
from tests.support.aws_calls import count_calls
from tests.support.checks import tenant_items
from tests.support.events import delivered
from tests.support.faults import Crashing, Meddling
from tests.support.lambda_pool import LambdaPool, deliver, lambda_pool

if TYPE_CHECKING:
    # Not imported when a worker process loads this module: conftest resets the endpoint.
    from tests.conftest import ConsumerFunction

TENANT = "acme"
USER = Origin.user("user-1", "req-1")
OWNER = "user-7"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def function(lead_processor_module: ConsumerFunction, table: Table) -> ConsumerFunction:
    return lead_processor_module


@pytest.fixture
def crm(table: Table, lead_secrets_key: str) -> Crm:
    return Crm(table, lead_secrets_key)


class Crm(Stores):
    """The test table's sources, leads, contacts and activities, used as the functions do."""

    def __init__(self, table: Table, key_alias: str) -> None:
        super().__init__(table)
        self.leads = LeadStore(table)
        self.sources = LeadSourceStore(table, SecretBox(lambda: boto3.client("kms"), key_alias))
        self.companies = CompanyStore(table)

    def source(self, **fields: Any) -> str:
        data = LeadSourceCreate.model_validate({"name": "Website", **fields})
        item, _ = self.sources.create(TENANT, data, "admin-1")
        return str(item["id"])

    def receive(self, source_id: str, body: dict[str, Any] | str, media: str = JSON) -> Event:
        """A verified delivery stored as the webhook stores it; its LeadReceived as a rule
        delivers it."""
        text = body if isinstance(body, str) else json.dumps(body)
        request_id = f"req-{uuid.uuid4().hex[:8]}"
        received = Received(TENANT, source_id, media, text, uuid.uuid4().hex, None, request_id)
        lead_id = self.leads.accept(received).lead_id
        (outbox,) = self.partition(keys.lead(TENANT, lead_id)["PK"], keys.OUTBOX_PREFIX)
        return Event(lead_id, delivered(outbox))

    def lead(self, event: Event) -> Item:
        lead = self.leads.get(TENANT, event.lead_id)
        assert lead is not None
        return lead

    def partition(self, partition: str, prefix: str) -> list[Item]:
        page = self.table.query(
            ListQuery("partition", partition), 100, None, newest_first=False, sort_prefix=prefix
        )
        assert page.next_cursor is None
        items: list[Item] = page.items
        return items

    def timeline(self, contact_id: str) -> list[Item]:
        """The contact's timeline as the activities API serves it, newest first."""
        page = self.activities.timeline(TENANT, contact_id, 100, None)
        assert page.next_cursor is None
        items: list[Item] = page.items
        return items

    def activities_under(self, contact_id: str) -> list[Item]:
        """The activity items in a contact's partition (also a merged contact's)."""
        return self.partition(keys.contact(TENANT, contact_id)["PK"], keys.ACTIVITY_PREFIX)

    def events(self, contact_id: str, detail_type: str) -> list[dict[str, Any]]:
        """The `detail` of each `detail_type` event in the contact's outbox, oldest first."""
        items = self.partition(keys.contact(TENANT, contact_id)["PK"], keys.OUTBOX_PREFIX)
        return [json.loads(i["detail"]) for i in items if i["detail_type"] == detail_type]

    def contacts_in_table(self) -> list[Item]:
        items = [from_item(raw) for raw in tenant_items(self.table, TENANT)]
        return [i for i in items if i.get("type") == keys.CONTACT_ITEM]

    def deliveries(self, source_id: str, status: LeadStatus) -> list[str]:
        page = self.leads.deliveries(TENANT, source_id, status, 100, None)
        return [i["id"] for i in page.items]

    def person(self, email: str, **fields: Any) -> Contact:
        """A contact someone entered through the API."""
        return self.contacts.create(TENANT, ContactCreate(email=email, **fields), USER)


class Event:
    """A delivered LeadReceived and the id of its lead."""

    def __init__(self, lead_id: str, body: dict[str, Any]) -> None:
        self.lead_id = lead_id
        self.body = body

    def again(self) -> dict[str, Any]:
        """The same event re-sent (EventBridge's id is new on every delivery)."""
        return {**self.body, "id": str(uuid.uuid4())}

    def typed(self) -> LeadReceived:
        return LeadReceived.model_validate(self.body["detail"])


def handle(function: ConsumerFunction, event: Event | dict[str, Any]) -> Any:
    body = event.body if isinstance(event, Event) else event
    return function.handler(body, LambdaContext())


def touch(crm: Crm, event: Event, **utm: str) -> dict[str, Any]:
    lead = crm.lead(event)
    source = crm.sources.load(TENANT, lead["source_id"])
    return {
        "source_id": lead["source_id"],
        "source_name": source["name"],
        "lead_id": lead["id"],
        "at": lead["received_at"],
        **utm,
    }


# A new person -----------------------------------------------------------------------------
def test_a_new_person_becomes_a_lead_with_the_submission_on_their_timeline(
    crm: Crm, function: ConsumerFunction
) -> None:
    company = crm.companies.create(
        TENANT, CompanyCreate(name="Analytical Engines", domain="engines.example"), USER
    )
    source = crm.source(
        default_tags=["Webinar"],
        default_owner_id=OWNER,
        field_map={"attributes.plan": "answers.0.value"},
    )
    event = crm.receive(
        source,
        {
            "email": "Ada@Engines.example",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines",
            "jobTitle": "Countess",
            "country": "gb",
            "tags": ["Spring 2026"],
            "utm": {"source": "newsletter", "campaign": "spring"},
            "pageUrl": "https://engines.example/demo",
            "referrer": "https://search.example/",
            "message": "Please call me",
            "password": "hunter2",
            "answers": [{"value": "pro"}],
        },
    )

    result = handle(function, event)

    lead = crm.lead(event)
    assert lead["status"] == "processed"
    assert "reason" not in lead
    assert lead["processed_at"] >= lead["received_at"]
    assert result == {
        "lead_id": event.lead_id,
        "status": "processed",
        "contact_id": lead["contact_id"],
        "activity_id": lead["activity_id"],
    }
    contact = crm.contacts.get(TENANT, lead["contact_id"])
    first = touch(
        crm,
        event,
        utm_source="newsletter",
        utm_campaign="spring",
        page_url="https://engines.example/demo",
        referrer="https://search.example/",
    )
    assert contact.model_dump(
        include={
            "email",
            "first_name",
            "last_name",
            "phone",
            "title",
            "country",
            "lifecycle_stage",
            "tags",
            "owner_id",
            "company_id",
            "attributes",
            "attribution",
            "activity_counts",
            "last_activity_at",
        },
        mode="json",
    ) == {
        "email": "ada@engines.example",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+442079460958",
        "title": "Countess",
        "country": "GB",
        "lifecycle_stage": "lead",
        "tags": ["webinar", "spring 2026"],
        "owner_id": OWNER,
        "company_id": company.id,
        "attributes": {"plan": "pro"},
        "attribution": {"first_touch": first, "last_touch": first},
        "activity_counts": {"form_submission": 1},
        "last_activity_at": lead["received_at"],
    }
    assert crm.companies.get(TENANT, company.id).contact_count == 1
    (activity,) = crm.timeline(contact.id)
    assert activity["id"] == lead["activity_id"]
    assert activity["activity_type"] == "form_submission"
    assert activity["occurred_at"] == lead["received_at"]
    assert activity["created_by"] == source
    assert (activity["lead_id"], activity["source_id"], activity["source_name"]) == (
        event.lead_id,
        source,
        "Website",
    )
    assert activity["page_url"] == "https://engines.example/demo"
    assert activity["fields"]["message"] == "Please call me"
    assert activity["fields"]["answers.0.value"] == "pro"
    assert activity["fields"]["utm.source"] == "newsletter"
    assert "password" not in activity["fields"]
    # Its events name the lead source as the actor, and the webhook's request.
    (created,) = crm.events(contact.id, "ContactCreated")
    (logged,) = crm.events(contact.id, "ActivityLogged")
    for detail in (created, logged):
        assert detail["metadata"]["actor"] == {"type": "lead_source", "id": source}
        assert detail["metadata"]["correlation_id"] == lead["request_id"]
    assert created["data"]["contact"]["attribution"] == contact.attribution
    assert crm.deliveries(source, LeadStatus.PROCESSED) == [event.lead_id]
    assert crm.deliveries(source, LeadStatus.ACCEPTED) == []


def test_a_form_encoded_lead_is_mapped_by_the_sources_field_map(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source(
        field_map={"email": "contact.mail", "full_name": "who", "utm_source": "src"}
    )
    event = crm.receive(
        source,
        "contact.mail=grace%40example.com&who=Grace+Brewster+Hopper&src=fair&email=x%40example.com",
        FORM,
    )

    handle(function, event)

    contact = crm.contacts.get(TENANT, crm.lead(event)["contact_id"])
    assert (contact.email, contact.first_name, contact.last_name) == (
        "grace@example.com",
        "Grace",
        "Brewster Hopper",
    )
    assert contact.attribution
    assert contact.attribution["first_touch"]["utm_source"] == "fair"
    assert crm.timeline(contact.id)[0]["fields"] == {
        "contact.mail": "grace@example.com",
        "who": "Grace Brewster Hopper",
        "src": "fair",
        "email": "x@example.com",
    }


# A person the CRM knows ---------------------------------------------------------------------
def test_a_known_email_fills_blanks_and_never_overwrites_what_a_person_entered(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source(default_tags=["web"], field_map={"attributes.plan": "plan"})
    first = crm.receive(
        source, {"email": "ada@example.com", "first_name": "Ada", "utm_source": "ads"}
    )
    handle(function, first)
    contact_id = crm.lead(first)["contact_id"]
    # Someone edits the contact: these are theirs now.
    crm.contacts.update(
        TENANT,
        contact_id,
        {
            "first_name": "Augusta Ada",
            "tags": ["customer"],
            "attributes": {"plan": "basic"},
            "lifecycle_stage": "customer",
        },
        None,
        USER,
    )
    second = crm.receive(
        source,
        {
            "Email": "ADA@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "phone": "020 7946 0958",
            "country": "GB",
            "title": "Countess",
            "tags": "vip, web",
            "utm_source": "newsletter",
            "plan": "pro",
        },
    )

    handle(function, second)

    assert crm.lead(second)["contact_id"] == contact_id
    contact = crm.contacts.get(TENANT, contact_id)
    assert (contact.first_name, contact.last_name) == ("Augusta Ada", "Lovelace")
    assert (contact.phone, contact.country, contact.title) == ("+442079460958", "GB", "Countess")
    assert contact.tags == ["customer", "web", "vip"]
    assert contact.attributes == {"plan": "basic"}
    assert contact.lifecycle_stage == "customer"  # a lead never demotes a customer
    assert contact.attribution == {
        "first_touch": touch(crm, first, utm_source="ads"),
        "last_touch": touch(crm, second, utm_source="newsletter"),
    }
    assert [c["id"] for c in crm.contacts_in_table()] == [contact_id]
    assert [a["lead_id"] for a in crm.timeline(contact_id)] == [second.lead_id, first.lead_id]
    assert contact.activity_counts == {"form_submission": 2}
    updates = crm.events(contact_id, "ContactUpdated")
    by_lead = updates[-1]
    assert by_lead["metadata"]["actor"] == {"type": "lead_source", "id": source}
    assert set(by_lead["data"]["changed"]) == {
        "last_name",
        "phone",
        "country",
        "title",
        "tags",
        "attribution",
    }


# Consent: a lead with the person's yes is their opt-in ------------------------------------------
def suppression(crm: Crm, email: str) -> Item | None:
    return crm.table.get(keys.suppression(TENANT, email))


def unsubscribed(crm: Crm, email: str) -> Contact:
    """A contact whose person unsubscribed (staff recorded it): its address is suppressed."""
    person = crm.person(email, email_consent="subscribed")
    crm.contacts.update(TENANT, person.id, {"email_consent": "unsubscribed"}, None, USER)
    found = suppression(crm, email)
    assert found is not None
    assert found["unsubscribed_at"]
    return person


def test_a_lead_with_consent_subscribes_an_unsubscribed_contact_and_lifts_the_suppression(
    crm: Crm, function: ConsumerFunction
) -> None:
    ada = unsubscribed(crm, "ada@example.com")
    source = crm.source()
    event = crm.receive(source, {"email": "Ada@Example.com", "newsletter": "yes"})

    handle(function, event)

    contact = crm.contacts.get(TENANT, ada.id)
    assert contact.email_consent == "subscribed"
    lead = crm.lead(event)
    assert contact.model_dump(mode="json")["consent_source"] == {
        "lead_id": event.lead_id,
        "source_id": source,
        "at": lead["received_at"],
    }
    assert suppression(crm, "ada@example.com") is None
    updated = crm.events(ada.id, "ContactUpdated")[-1]
    assert updated["metadata"]["actor"] == {"type": "lead_source", "id": source}
    assert {"email_consent", "consent_source"} <= set(updated["data"]["changed"])
    assert updated["data"]["previous"]["email_consent"] == "unsubscribed"


def test_a_lead_with_consent_makes_a_new_contact_subscribed(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source(field_map={"email_consent": "answers.gdpr"})
    event = crm.receive(source, "email=bob%40example.com&answers.gdpr=on", media=FORM)

    handle(function, event)

    contact = crm.contacts.get(TENANT, crm.lead(event)["contact_id"])
    assert contact.email_consent == "subscribed"
    assert contact.model_dump(mode="json")["consent_source"]["lead_id"] == event.lead_id


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@example.com", "newsletter": "no"},
        {"email": "ada@example.com", "opt_in": False},
        {"email": "ada@example.com", "consent": ""},
        {"email": "ada@example.com", "first_name": "Ada"},
    ],
    ids=["no", "false", "blank", "absent"],
)
def test_a_lead_without_a_yes_changes_no_consent(
    crm: Crm, function: ConsumerFunction, body: dict[str, Any]
) -> None:
    """An unticked box is not an unsubscribe, and not a subscribe either."""
    ada = unsubscribed(crm, "ada@example.com")
    bob = crm.person("bob@example.com", email_consent="subscribed")
    source = crm.source()

    handle(function, crm.receive(source, body))
    handle(function, crm.receive(source, {**body, "email": "bob@example.com"}))

    assert crm.contacts.get(TENANT, ada.id).email_consent == "unsubscribed"
    assert crm.contacts.get(TENANT, bob.id).email_consent == "subscribed"
    assert suppression(crm, "ada@example.com") is not None


def test_a_lead_without_consent_recreates_a_deleted_unsubscribed_person_unsubscribed(
    crm: Crm, function: ConsumerFunction
) -> None:
    ada = unsubscribed(crm, "ada@example.com")
    crm.contacts.delete(TENANT, ada.id, None, USER)
    event = crm.receive(crm.source(), {"email": "ada@example.com", "first_name": "Ada"})

    handle(function, event)

    again = crm.contacts.get(TENANT, crm.lead(event)["contact_id"])
    assert again.id != ada.id
    assert again.email_consent == "unsubscribed"
    assert suppression(crm, "ada@example.com") is not None


@pytest.mark.parametrize("reason", ["hard_bounce", "complaint"])
def test_an_opt_in_never_lifts_a_bounce_or_a_complaint(
    crm: Crm, function: ConsumerFunction, reason: str
) -> None:
    from crm_core.campaigns.suppression import SuppressionReason, suppress_put
    from crm_core.clock import now_iso

    ada = crm.person("ada@example.com", email_consent="subscribed")
    crm.table.transact(
        [
            suppress_put(
                crm.table.op, TENANT, "ada@example.com", SuppressionReason(reason), now_iso()
            )
        ]
    )
    crm.contacts.update(TENANT, ada.id, {"email_consent": "unsubscribed"}, None, USER)
    event = crm.receive(crm.source(), {"email": "ada@example.com", "opt_in": "true"})

    handle(function, event)

    assert crm.contacts.get(TENANT, ada.id).email_consent == "subscribed"
    left = suppression(crm, "ada@example.com")
    assert left is not None  # still never mailed
    assert left["reason"] == reason
    assert left[f"{reason}_at"]
    assert "unsubscribed_at" not in left


def test_a_lead_of_a_merged_address_goes_to_the_survivor(
    crm: Crm, function: ConsumerFunction
) -> None:
    survivor = crm.person("ada@example.com")
    merged = crm.person("ada.lovelace@example.com", first_name="Ada")
    crm.contacts.merge(TENANT, survivor.id, merged.id, None, USER)
    event = crm.receive(crm.source(), {"email": "ada.lovelace@example.com", "lastName": "L"})

    handle(function, event)

    assert crm.lead(event)["contact_id"] == survivor.id
    assert crm.contacts.get(TENANT, survivor.id).last_name == "L"
    assert len(crm.timeline(survivor.id)) == 1


def test_attribution_is_the_same_whichever_lead_is_processed_first(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source()
    older = crm.receive(source, {"email": "ada@example.com", "utm_source": "ads"})
    newer = crm.receive(source, {"email": "ada@example.com", "utm_source": "newsletter"})

    handle(function, newer)
    handle(function, older)

    contact = crm.contacts.get(TENANT, crm.lead(older)["contact_id"])
    assert contact.attribution == {
        "first_touch": touch(crm, older, utm_source="ads"),
        "last_touch": touch(crm, newer, utm_source="newsletter"),
    }


def test_a_merge_keeps_the_earliest_first_touch_and_the_latest_last_touch(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source()
    first = crm.receive(source, {"email": "ada@example.com", "utm_source": "ads"})
    middle = crm.receive(source, {"email": "countess@example.com", "utm_source": "fair"})
    last = crm.receive(source, {"email": "ada@example.com", "utm_source": "newsletter"})
    for event in (first, middle, last):
        handle(function, event)
    ada, countess = crm.lead(first)["contact_id"], crm.lead(middle)["contact_id"]

    crm.contacts.merge(TENANT, countess, ada, None, USER)

    assert crm.contacts.get(TENANT, countess).attribution == {
        "first_touch": touch(crm, first, utm_source="ads"),
        "last_touch": touch(crm, last, utm_source="newsletter"),
    }


# Rejected and imperfect leads ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "media", "reason"),
    [
        (
            {"email": "not-an-email", "name": "Ada"},
            JSON,
            "no usable email or phone: email 'not-an-email' is not a valid address",
        ),
        (
            {"name": "Ada", "message": "call me"},
            JSON,
            "no usable email or phone: the payload has no email or phone field",
        ),
        (
            "email=a%40example.com&email=b%40example.com",
            FORM,
            "no usable email or phone: email: 'email' holds a list, not text",
        ),
        (
            {"email": {"work": "ada@example.com"}, "phone": "n/a"},
            JSON,
            "no usable email or phone: email: 'email' holds an object, not text; "
            "phone 'n/a' is not a phone number",
        ),
    ],
    ids=["invalid-email", "neither", "repeated-form-field", "junk"],
)
def test_a_lead_without_a_usable_email_or_phone_is_kept_rejected_with_its_reason(
    crm: Crm, function: ConsumerFunction, body: Any, media: str, reason: str
) -> None:
    source = crm.source()
    event = crm.receive(source, body, media)

    first = handle(function, event)
    again = handle(function, event.again())

    lead = crm.lead(event)
    assert (lead["status"], lead["reason"]) == ("rejected", reason)
    assert "contact_id" not in lead
    assert lead["processed_at"]
    assert (
        first
        == again
        == {
            "lead_id": event.lead_id,
            "status": "rejected",
            "contact_id": None,
            "activity_id": None,
        }
    )
    assert crm.contacts_in_table() == []
    assert crm.deliveries(source, LeadStatus.REJECTED) == [event.lead_id]
    assert lead["payload"] == (body if isinstance(body, str) else json.dumps(body))


def test_an_invalid_email_beside_a_good_phone_is_dropped_with_a_warning(
    crm: Crm, function: ConsumerFunction
) -> None:
    event = crm.receive(crm.source(), {"email": "ada(at)example.com", "phone": "+1 415 555 2671"})

    handle(function, event)

    lead = crm.lead(event)
    assert lead["status"] == "processed"
    assert lead["reason"] == "email 'ada(at)example.com' is not a valid address; dropped"
    contact = crm.contacts.get(TENANT, lead["contact_id"])
    assert (contact.email, contact.phone) == (None, "+14155552671")


# Exactly once ------------------------------------------------------------------------------------
def test_the_same_event_twice_makes_one_contact_and_one_activity(
    crm: Crm, function: ConsumerFunction
) -> None:
    event = crm.receive(crm.source(), {"email": "ada@example.com", "name": "Ada"})

    first = handle(function, event)
    second = handle(function, event.again())
    # Past the consumer's idempotency record (an archive replay after 7 days): the lead's
    # own state says it is done, at the cost of one read.
    with count_calls(crm.table.client) as calls:
        replay = LeadProcessor(crm.table).process(event.typed())

    assert first == second == replay.summary()
    assert replay.replayed
    assert calls.by_operation == Counter({"GetItem": 1})
    (contact,) = crm.contacts_in_table()
    assert len(crm.timeline(contact["id"])) == 1
    assert len(crm.events(contact["id"], "ContactCreated")) == 1
    assert len(crm.events(contact["id"], "ActivityLogged")) == 1


def test_a_crash_between_the_contact_and_the_activity_then_a_retry_makes_each_once(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = crm.receive(crm.source(), {"email": "ada@example.com"})
    monkeypatch.setattr(
        function.context.table, "client", Crashing(function.context.table.client, after=1)
    )

    with pytest.raises(TimeoutError):
        handle(function, event)

    lead = crm.lead(event)
    assert lead["status"] == "accepted"
    assert "activity_id" not in lead
    (contact,) = crm.contacts_in_table()
    assert contact["id"] == lead["contact_id"]
    assert crm.timeline(contact["id"]) == []

    monkeypatch.undo()
    handle(function, event.again())

    lead = crm.lead(event)
    assert lead["status"] == "processed"
    assert [c["id"] for c in crm.contacts_in_table()] == [lead["contact_id"]]
    assert [a["id"] for a in crm.timeline(lead["contact_id"])] == [lead["activity_id"]]
    assert len(crm.events(lead["contact_id"], "ContactCreated")) == 1


def test_a_failure_is_recorded_then_cleared_by_a_later_success(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = crm.source()
    event = crm.receive(source, {"email": "ada@example.com"})
    # The second transaction (the activity step) fails as DynamoDB sometimes does.
    monkeypatch.setattr(
        function.context.table, "client", Failing(function.context.table.client, call=2)
    )

    with pytest.raises(ClientError):
        handle(function, event)

    lead = crm.lead(event)
    assert (lead["status"], lead["reason"]) == ("failed", "DynamoDB InternalServerError")
    assert crm.deliveries(source, LeadStatus.FAILED) == [event.lead_id]

    monkeypatch.undo()
    handle(function, event.again())

    lead = crm.lead(event)
    assert lead["status"] == "processed"
    assert "reason" not in lead
    assert crm.deliveries(source, LeadStatus.FAILED) == []
    assert crm.deliveries(source, LeadStatus.PROCESSED) == [event.lead_id]
    assert len(crm.timeline(lead["contact_id"])) == 1


def test_a_contact_merged_between_the_steps_gets_the_submission_on_its_survivor(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = crm.receive(crm.source(), {"email": "ada@example.com", "utm_source": "ads"})
    monkeypatch.setattr(
        function.context.table, "client", Crashing(function.context.table.client, after=1)
    )
    with pytest.raises(TimeoutError):
        handle(function, event)
    monkeypatch.undo()
    created = crm.lead(event)["contact_id"]
    survivor = crm.person("augusta@example.com")
    crm.contacts.merge(TENANT, survivor.id, created, None, USER)

    handle(function, event.again())

    lead = crm.lead(event)
    assert (lead["status"], lead["contact_id"]) == ("processed", survivor.id)
    assert [a["id"] for a in crm.timeline(survivor.id)] == [lead["activity_id"]]
    assert crm.activities_under(created) == []
    attribution = crm.contacts.get(TENANT, survivor.id).attribution
    assert attribution
    assert attribution["first_touch"] == touch(crm, event, utm_source="ads")


def test_a_contact_deleted_between_the_steps_leaves_the_lead_rejected(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = crm.receive(crm.source(), {"email": "ada@example.com"})
    monkeypatch.setattr(
        function.context.table, "client", Crashing(function.context.table.client, after=1)
    )
    with pytest.raises(TimeoutError):
        handle(function, event)
    monkeypatch.undo()
    contact_id = crm.lead(event)["contact_id"]
    crm.contacts.delete(TENANT, contact_id, None, USER)

    handle(function, event.again())

    lead = crm.lead(event)
    assert lead["status"] == "rejected"
    assert lead["reason"] == f"its contact {contact_id} was deleted before it was logged"
    assert crm.contacts_in_table() == []


# Races, one at a time ----------------------------------------------------------------------------
def test_a_persons_edit_during_processing_is_never_written_over(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = crm.person("ada@example.com")
    event = crm.receive(
        crm.source(), {"email": "ada@example.com", "firstName": "Ada", "lastName": "L"}
    )

    def edit() -> None:
        crm.contacts.update(TENANT, person.id, {"first_name": "Augusta"}, None, USER)

    monkeypatch.setattr(
        function.context.table, "client", Meddling(function.context.table.client, edit)
    )
    handle(function, event)

    contact = crm.contacts.get(TENANT, person.id)
    assert (contact.first_name, contact.last_name) == ("Augusta", "L")
    assert crm.lead(event)["status"] == "processed"


def test_a_contact_created_with_the_email_meanwhile_is_updated_instead(
    crm: Crm, function: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = crm.receive(
        crm.source(), {"email": "ada@example.com", "firstName": "Ada", "lastName": "L"}
    )
    person: list[Contact] = []

    def create() -> None:
        person.append(crm.person("ada@example.com", first_name="Augusta"))

    monkeypatch.setattr(
        function.context.table, "client", Meddling(function.context.table.client, create)
    )
    handle(function, event)

    (stored,) = crm.contacts_in_table()
    assert stored["id"] == person[0].id == crm.lead(event)["contact_id"]
    assert (stored["first_name"], stored["last_name"]) == ("Augusta", "L")
    assert len(crm.timeline(person[0].id)) == 1


# Cost -------------------------------------------------------------------------------------------
def test_a_lead_costs_a_fixed_number_of_calls_however_full_the_table(
    crm: Crm, function: ConsumerFunction
) -> None:
    source = crm.source(default_tags=["web"])
    note = validate_fields(ActivityType.NOTE, {"body": "hello"})

    def measured(body: dict[str, Any]) -> Counter[str]:
        event = crm.receive(source, body)
        with count_calls(function.context.table.client) as calls:
            handle(function, event)
        assert crm.lead(event)["status"] == "processed"
        return calls.by_operation

    def busier() -> None:
        for _ in range(15):
            contact_id = crm.contact()
            for _ in range(3):
                crm.activities.log(TENANT, contact_id, ActivityType.NOTE, note, None, USER)

    # A new contact: the lead, its source, the email's owner, the email domain's company;
    # the contact step; the contact (for its summary) and the activity step. Then the
    # consumer's idempotency record: put, then completed.
    new_contact = Counter({"GetItem": 5, "TransactWriteItems": 2, "PutItem": 1, "UpdateItem": 1})
    # An existing contact: also the contact itself, read for the update; its company is
    # looked up by the email's domain only when it has none.
    existing = Counter({"GetItem": 6, "TransactWriteItems": 2, "PutItem": 1, "UpdateItem": 1})
    with_company = Counter({"GetItem": 5, "TransactWriteItems": 2, "PutItem": 1, "UpdateItem": 1})
    assert measured({"email": "ada@example.com"}) == new_contact
    assert measured({"email": "ada@example.com", "lastName": "L"}) == existing
    busier()
    assert measured({"email": "grace@example.com"}) == new_contact
    assert measured({"email": "grace@example.com", "lastName": "H"}) == existing
    company = crm.companies.create(TENANT, CompanyCreate(name="Bletchley"), USER)
    crm.person("alan@example.com", company_id=company.id)
    assert measured({"email": "alan@example.com"}) == with_company


# Logs -------------------------------------------------------------------------------------------
@pytest.fixture
def log_lines(function: ConsumerFunction) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the function's logger writes at INFO, formatted as in Lambda."""
    logger = function.context.logger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    level = logger.log_level
    logger.addHandler(handler)
    logger.setLevel("INFO")
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)


def test_logs_carry_ids_and_statuses_never_the_persons_data(
    crm: Crm, function: ConsumerFunction, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    source = crm.source()
    good = crm.receive(
        source, {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+1 415 555 2671"}
    )
    bad = crm.receive(source, {"email": "countess.of.lovelace", "name": "Ada Lovelace"})

    handle(function, good)
    handle(function, bad)

    lines = log_lines()
    outcomes = {line["lead_id"]: line for line in lines if "lead_id" in line}
    assert outcomes[good.lead_id]["message"] == "lead processed"
    assert outcomes[good.lead_id]["contact_id"] == crm.lead(good)["contact_id"]
    assert outcomes[bad.lead_id]["message"] == "lead rejected"
    text = json.dumps(lines)
    for private in ("ada@example.com", "Lovelace", "5552671", "555 2671", "countess"):
        assert private not in text


# Concurrency: one process per Lambda environment (docs/decisions.md, 17) ----------------------
@pytest.fixture(scope="module")
def pool(lead_processor_module: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("lead_processor") as running:
        yield running


def test_leads_of_one_person_at_once_make_one_contact_with_every_submission(
    crm: Crm, pool: LambdaPool
) -> None:
    source = crm.source(default_tags=["web"])
    people = [f"person-{n}@example.com" for n in range(4)]
    events = {
        email: [crm.receive(source, {"email": email, "utm_source": f"s{n}"}) for n in range(2)]
        for email in people
    }
    batch = [e for pair in events.values() for e in pair]
    barrier = pool.manager.Barrier(len(batch))

    futures = [pool.executor.submit(deliver, e.body, barrier) for e in batch]
    results = [json.loads(f.result(timeout=120)) for f in futures]

    assert {r["status"] for r in results} == {"processed"}
    contacts = {c["email"]: c for c in crm.contacts_in_table()}
    assert sorted(contacts) == people
    for email, (older, newer) in events.items():
        contact = contacts[email]
        assert {crm.lead(e)["contact_id"] for e in (older, newer)} == {contact["id"]}
        timeline = crm.timeline(contact["id"])
        assert sorted(a["lead_id"] for a in timeline) == sorted([older.lead_id, newer.lead_id])
        assert contact["attribution"] == {
            "first_touch": touch(crm, older, utm_source="s0"),
            "last_touch": touch(crm, newer, utm_source="s1"),
        }
        assert contact["tags"] == ["web"]


# Faults at the AWS boundary -----------------------------------------------------------------------
class Failing:
    """A DynamoDB client whose `call`-th transaction fails with an internal error."""

    def __init__(self, client: Any, call: int) -> None:
        self._client = client
        self._count = 0
        self._call = call

    def transact_write_items(self, **params: Any) -> Any:
        self._count += 1
        if self._count == self._call:
            error = {"Error": {"Code": "InternalServerError", "Message": "try again"}}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        return self._client.transact_write_items(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
