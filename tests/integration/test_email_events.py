"""email_events: SES's events of campaign emails and ContactUnsubscribed, onto recipients,
campaign counters, activities, suppressions and consent; exactly once whatever is delivered
twice, at once or out of order; nothing for events that are not ours.

Campaigns are made with CampaignStore and their recipients put as the sender leaves them
(`sent`, with a message id and `count_sent`); SES's events are built as SES publishes them
on the default bus (tests/support: none yet for SES, so here) and handed to the handler.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.campaigns import recipients
from crm_core.campaigns.campaign_models import CampaignCreate, RecipientStatus, counter
from crm_core.campaigns.campaign_store import CampaignStore, counts
from crm_core.campaigns.complaint_rate import pause_reason
from crm_core.campaigns.engagement import NotYetSent
from crm_core.campaigns.unsubscribing import Method, Unsubscriber
from crm_core.clock import now_iso
from crm_core.dynamo import from_item, key_attrs
from crm_core.events.consumer import PoisonEvent
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create
from tests.support.checks import table_items
from tests.support.events import delivered, redelivered
from tests.support.lambda_pool import LambdaPool, deliver, lambda_pool

TENANT = "acme"
ADMIN = User(TENANT, ("admin",))
ORIGIN = Origin.user("user-1", "req-1")
CONFIG_SET = "crm-test-campaigns"
SUBJECT = "Spring offer"
DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "Reject": "Email Rejected",
    "DeliveryDelay": "Email Delivery Delayed",
}


@pytest.fixture(scope="module")
def email_events_module(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("email_events")


@pytest.fixture
def function(email_events_module: ConsumerFunction, table: Any) -> ConsumerFunction:
    return email_events_module


# The scene -------------------------------------------------------------------------------
class Scene:
    """A sending campaign of the test table, its recipients, and SES events about them."""

    def __init__(self, table: Any, api: Api, function: ConsumerFunction) -> None:
        self.table = table
        self.api = api
        self.function = function
        self.campaigns = CampaignStore(table)

    def contact(self, email: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"email": email or f"{uuid.uuid4().hex[:10]}@example.com", **fields}
        return create(self.api, "/contacts", ADMIN, body)

    def campaign(self, tenant: str = TENANT, **counters: int) -> str:
        body = CampaignCreate(
            name="Spring",
            segment_id=new_ulid(),
            from_address="acme.news@mail.example.com",
            subject=SUBJECT,
            html="<p>Hi</p>",
            text="Hi",
        )
        campaign_id = self.campaigns.create(tenant, body, ORIGIN)["id"]
        self.campaigns.send_now(tenant, campaign_id, None, ORIGIN)
        if counters:
            self.set_counts(campaign_id, tenant, **counters)
        return str(campaign_id)

    def set_counts(self, campaign_id: str, tenant: str = TENANT, **values: int) -> None:
        names = {f"#c{i}": counter(name) for i, name in enumerate(values)}
        sets = ", ".join(f"#c{i} = :c{i}" for i in range(len(values)))
        self.table.update(
            self.table.op.update(
                keys.campaign(tenant, campaign_id),
                f"SET {sets}",
                None,
                names,
                **{f"c{i}": v for i, v in enumerate(values.values())},
            )
        )

    def recipient(
        self,
        campaign_id: str,
        contact: dict[str, Any],
        status: RecipientStatus = RecipientStatus.SENT,
        tenant: str = TENANT,
    ) -> str:
        """The contact's recipient, as the sender leaves it: `sent`, with its message id
        (and the campaign's audience and sent counted)."""
        now = now_iso()
        item = recipients.new_recipient(tenant, campaign_id, new_ulid(), contact, now)
        message_id = f"0100{uuid.uuid4().hex}-000000"
        if status != RecipientStatus.QUEUED:
            item.update(recipients.status_keys(tenant, campaign_id, contact["id"], status))
        if status == RecipientStatus.SENT:
            item.update(sent_at=now, message_id=message_id)
        ops = [
            self.table.op.put(item),
            self.table.op.update(
                keys.campaign(tenant, campaign_id),
                "ADD #a :one, #s :sent",
                None,
                {"#a": counter("audience"), "#s": counter("sent")},
                one=1,
                sent=1 if status == RecipientStatus.SENT else 0,
            ),
        ]
        self.table.transact(ops)
        return message_id

    # SES events -----------------------------------------------------------------------
    def ses(
        self,
        kind: str,
        campaign_id: str | None,
        contact: dict[str, Any],
        message_id: str = "0100-message-000000",
        tenant: str | None = TENANT,
        **part: Any,
    ) -> dict[str, Any]:
        """An SES event as the default bus delivers it (docs: SES event publishing)."""
        email = contact.get("email") or "nobody@example.com"
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [CONFIG_SET],
            "ses:source-ip": ["192.0.2.0"],
            "ses:from-domain": ["mail.example.com"],
            "ses:caller-identity": ["crm-test-campaign-sender"],
        }
        if tenant is not None:
            tags["tenant_id"] = [tenant]
        if campaign_id is not None:
            tags["campaign_id"] = [campaign_id]
            tags["contact_id"] = [contact["id"]]
        detail: dict[str, Any] = {
            "eventType": kind,
            "mail": {
                "timestamp": "2026-11-22T10:00:00.000Z",
                "source": "acme.news@mail.example.com",
                "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/mail.example.com",
                "sendingAccountId": "123456789012",
                "messageId": message_id,
                "destination": [email],
                "headersTruncated": False,
                "headers": [{"name": "Subject", "value": SUBJECT}],
                "commonHeaders": {
                    "from": ["acme.news@mail.example.com"],
                    "to": [email],
                    "messageId": message_id,
                    "subject": SUBJECT,
                },
                "tags": tags,
            },
        }
        defaults: dict[str, dict[str, Any]] = {
            "Send": {"send": {}},
            "Delivery": {
                "delivery": {
                    "timestamp": "2026-11-22T10:00:02.000Z",
                    "processingTimeMillis": 2000,
                    "recipients": [email],
                    "smtpResponse": "250 2.6.0 Message received",
                    "reportingMTA": "a8-70.smtp-out.amazonses.com",
                }
            },
            "Open": {
                "open": {
                    "timestamp": "2026-11-22T10:05:00.000Z",
                    "userAgent": "Mozilla/5.0",
                    "ipAddress": "192.0.2.1",
                }
            },
            "Click": {
                "click": {
                    "timestamp": "2026-11-22T10:06:00.000Z",
                    "userAgent": "Mozilla/5.0",
                    "ipAddress": "192.0.2.1",
                    "link": "https://acme.example/spring",
                    "linkTags": {"samplekey0": ["samplevalue0"]},
                }
            },
            "Bounce": {
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [
                        {
                            "emailAddress": email,
                            "action": "failed",
                            "status": "5.1.1",
                            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                        }
                    ],
                    "timestamp": "2026-11-22T10:00:03.000Z",
                    "feedbackId": "0100-feedback-000000",
                    "reportingMTA": "dsn; mta.example.com",
                }
            },
            "Complaint": {
                "complaint": {
                    "feedbackId": "0100-feedback-000001",
                    "complaintSubType": None,
                    "complainedRecipients": [{"emailAddress": email}],
                    "timestamp": "2026-11-22T10:10:00.000Z",
                    "userAgent": "Mozilla/5.0",
                    "complaintFeedbackType": "abuse",
                    "arrivalDate": "2026-11-22T10:09:00.000Z",
                }
            },
            "Reject": {"reject": {"reason": "Bad content"}},
            "DeliveryDelay": {
                "deliveryDelay": {
                    "timestamp": "2026-11-22T10:00:05.000Z",
                    "delayType": "TransientCommunicationFailure",
                    "expirationTime": "2026-11-23T10:00:00.000Z",
                    "delayedRecipients": [{"emailAddress": email}],
                }
            },
        }
        for name, value in defaults.get(kind, {}).items():
            detail[name] = {**value, **part} if isinstance(value, dict) else value
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": DETAIL_TYPES.get(kind, kind),
            "source": "aws.ses",
            "account": "123456789012",
            "time": "2026-11-22T10:00:10Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:ses:us-east-1:123456789012:configuration-set/{CONFIG_SET}"],
            "detail": detail,
        }

    def deliver(self, event: dict[str, Any]) -> Any:
        return self.function.handler(event, LambdaContext())

    # What is in the table -------------------------------------------------------------
    def recipient_item(self, campaign_id: str, contact_id: str, tenant: str = TENANT) -> Any:
        return self.table.get(keys.recipient(tenant, campaign_id, contact_id))

    def counts(self, campaign_id: str, tenant: str = TENANT) -> dict[str, int]:
        return counts(self.campaigns.load(tenant, campaign_id))

    def items(self, contact_id: str, tenant: str = TENANT) -> list[dict[str, Any]]:
        partition = keys.contact(tenant, contact_id)["PK"]
        return [from_item(i) for i in table_items(self.table) if i["PK"]["S"] == partition]

    def activities(self, contact_id: str, tenant: str = TENANT) -> list[dict[str, Any]]:
        return [i for i in self.items(contact_id, tenant) if i.get("type") == "activity"]

    def events(self, partition_key: dict[str, str], detail_type: str) -> list[dict[str, Any]]:
        return [
            json.loads(i["detail"])
            for i in (from_item(raw) for raw in table_items(self.table))
            if i["PK"] == partition_key["PK"]
            and i.get("type") == "outbox_event"
            and i["detail_type"] == detail_type
        ]

    def suppression(self, email: str, tenant: str = TENANT) -> Any:
        return self.table.get(keys.suppression(tenant, email))


@pytest.fixture
def scene(table: Any, api: Api, function: ConsumerFunction, mail_setup: dict[str, str]) -> Scene:
    return Scene(table, api, function)


def twice(scene: Scene, event: dict[str, Any]) -> list[Any]:
    """The event delivered, then delivered again (EventBridge's at-least-once)."""
    return [scene.deliver(event), scene.deliver(redelivered(event))]


# Each kind, delivered twice ---------------------------------------------------------------
def test_delivery_is_recorded_counted_and_logged_once(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)

    first, again = twice(scene, scene.ses("Delivery", campaign_id, ada, message_id))

    assert first["outcome"] == "recorded"
    assert again["outcome"] == "duplicate"
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "delivered"
    assert recipient["delivered_at"] == "2026-11-22T10:00:02.000Z"
    assert recipient["GSI3PK"] == keys.recipients_in_status(TENANT, campaign_id, "delivered")
    assert scene.counts(campaign_id)["delivered"] == 1
    (activity,) = scene.activities(ada["id"])
    assert activity["activity_type"] == "email_delivered"
    assert activity["campaign_id"] == campaign_id
    assert activity["message_id"] == message_id
    assert activity["subject"] == SUBJECT
    assert activity["occurred_at"] == "2026-11-22T10:00:02.000Z"
    assert activity["created_by"] == "email_events"
    assert first["activity_id"] == activity["id"]
    (logged,) = scene.events(keys.contact(TENANT, ada["id"]), "ActivityLogged")
    assert logged["data"]["activity"]["type"] == "email_delivered"
    assert logged["data"]["activity"]["campaign_id"] == campaign_id
    contact = scene.table.get(keys.contact(TENANT, ada["id"]))
    assert contact["activity_count_email_delivered"] == 1


def test_the_first_open_counts_and_later_ones_do_not(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    scene.deliver(scene.ses("Delivery", campaign_id, ada, message_id))

    results = twice(scene, scene.ses("Open", campaign_id, ada, message_id))
    later = scene.deliver(
        scene.ses("Open", campaign_id, ada, message_id, timestamp="2026-11-23T08:00:00.000Z")
    )

    assert [r["outcome"] for r in [*results, later]] == ["recorded", "duplicate", "duplicate"]
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "opened"
    assert recipient["opened_at"] == "2026-11-22T10:05:00.000Z"
    assert scene.counts(campaign_id)["opened"] == 1
    types = sorted(a["activity_type"] for a in scene.activities(ada["id"]))
    assert types == ["email_delivered", "email_opened"]


def test_clicks_count_once_and_keep_the_last_link(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)

    first, again = twice(scene, scene.ses("Click", campaign_id, ada, message_id))
    scene.deliver(
        scene.ses(
            "Click",
            campaign_id,
            ada,
            message_id,
            link="https://acme.example/pricing",
            timestamp="2026-11-22T11:00:00.000Z",
        )
    )
    # An older click arriving late does not move the last link back.
    scene.deliver(
        scene.ses(
            "Click",
            campaign_id,
            ada,
            message_id,
            link="https://acme.example/old",
            timestamp="2026-11-22T10:30:00.000Z",
        )
    )

    assert (first["outcome"], again["outcome"]) == ("recorded", "duplicate")
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "clicked"
    assert recipient["clicked_at"] == "2026-11-22T10:06:00.000Z"
    assert recipient["last_link"] == "https://acme.example/pricing"
    assert scene.counts(campaign_id)["clicked"] == 1
    (activity,) = scene.activities(ada["id"])
    assert activity["activity_type"] == "email_clicked"
    assert activity["url"] == "https://acme.example/spring"


def test_a_hard_bounce_counts_suppresses_and_logs_once(scene: Scene) -> None:
    ada = scene.contact("Ada.Bounce@Example.com")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    event = scene.ses("Bounce", campaign_id, ada, message_id)
    event["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = "Ada.Bounce@Example.com"

    first, again = twice(scene, event)

    assert (first["outcome"], again["outcome"]) == ("recorded", "duplicate")
    assert first["suppressed"] == 1
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "bounced"
    assert recipient["bounce_type"] == "permanent"
    assert scene.counts(campaign_id)["bounced"] == 1
    suppression = scene.suppression("ada.bounce@example.com")
    assert suppression["reason"] == "hard_bounce"
    assert suppression["campaign_id"] == campaign_id
    (activity,) = scene.activities(ada["id"])
    assert activity["activity_type"] == "email_bounced"
    assert activity["bounce_type"] == "permanent"


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_a_soft_bounce_is_noted_but_not_counted_nor_suppressed(
    scene: Scene, bounce_type: str
) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    event = scene.ses("Bounce", campaign_id, ada, message_id, bounceType=bounce_type)

    first, again = twice(scene, event)

    assert (first["outcome"], again["outcome"]) == ("recorded", "duplicate")
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "sent"
    assert recipient["soft_bounced_at"] == "2026-11-22T10:00:03.000Z"
    assert recipient["soft_bounce_type"] == bounce_type
    assert scene.counts(campaign_id)["bounced"] == 0
    assert scene.suppression(ada["email"]) is None
    assert scene.activities(ada["id"]) == []


def test_a_complaint_counts_suppresses_and_unsubscribes_the_contact_once(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    scene.deliver(scene.ses("Delivery", campaign_id, ada, message_id))

    first, again = twice(scene, scene.ses("Complaint", campaign_id, ada, message_id))

    assert first["outcome"] == "recorded"
    assert first["unsubscribed"] == "unsubscribed"
    assert again["outcome"] == "duplicate"
    assert again["unsubscribed"] == "already_unsubscribed"
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "complained"
    assert recipient["complaint_type"] == "abuse"
    c = scene.counts(campaign_id)
    assert (c["complained"], c["delivered"], c["unsubscribed"]) == (1, 1, 0)
    assert scene.suppression(ada["email"])["reason"] == "complaint"
    contact = scene.table.get(keys.contact(TENANT, ada["id"]))
    assert contact["email_consent"] == "unsubscribed"
    (unsubscribed,) = scene.events(keys.contact(TENANT, ada["id"]), "ContactUnsubscribed")
    assert unsubscribed["data"]["method"] == "complaint"
    assert unsubscribed["data"]["campaign_id"] == campaign_id
    assert unsubscribed["metadata"]["actor"] == {"type": "system", "id": "email_events"}
    (updated,) = scene.events(keys.contact(TENANT, ada["id"]), "ContactUpdated")
    assert updated["data"]["changed"] == ["email_consent"]
    # No activity of its own: ContactUnsubscribed's consumer logs `unsubscribed`.
    assert [a["activity_type"] for a in scene.activities(ada["id"])] == ["email_delivered"]


def test_a_complaint_suppresses_the_address_as_unsubscribed_with_the_consent(
    scene: Scene,
) -> None:
    """The complaint's own suppression, and the unsubscribe's, in the consent's transaction:
    both reasons hold, the first one named."""
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)

    scene.deliver(scene.ses("Complaint", campaign_id, ada, message_id))

    suppression = scene.suppression(ada["email"])
    contact = scene.table.get(keys.contact(TENANT, ada["id"]))
    assert suppression["reason"] == "complaint"
    assert suppression["complaint_at"]
    assert suppression["unsubscribed_at"] == contact["updated_at"]
    assert contact["email_consent"] == "unsubscribed"


def test_a_reject_moves_the_recipient_from_sent_to_failed(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    assert scene.counts(campaign_id)["sent"] == 1

    first, again = twice(scene, scene.ses("Reject", campaign_id, ada, message_id))

    assert (first["outcome"], again["outcome"]) == ("recorded", "duplicate")
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "failed"
    assert recipient["error"] == "SES rejected the message: Bad content"
    assert recipient["rejected_at"] == recipient["failed_at"]
    c = scene.counts(campaign_id)
    # Each recipient is still counted once among sent + failed + skipped.
    assert (c["sent"], c["failed"]) == (0, 1)
    assert scene.activities(ada["id"]) == []


@pytest.mark.parametrize("kind", ["Send", "DeliveryDelay", "Rendering Failure", "Subscription"])
def test_kinds_we_keep_nothing_of(scene: Scene, kind: str) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    before = table_items(scene.table)
    assert scene.deliver(scene.ses(kind, campaign_id, ada, message_id))["outcome"] == (
        "not_tracked"
    )
    assert table_items(scene.table) == before


# Order ------------------------------------------------------------------------------------
def test_an_open_before_its_delivery_stays_opened_and_delivery_still_counts(
    scene: Scene,
) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)

    scene.deliver(scene.ses("Open", campaign_id, ada, message_id))
    twice(scene, scene.ses("Delivery", campaign_id, ada, message_id))

    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "opened"
    assert recipient["GSI3PK"] == keys.recipients_in_status(TENANT, campaign_id, "opened")
    assert recipient["delivered_at"] == "2026-11-22T10:00:02.000Z"
    assert recipient["opened_at"] == "2026-11-22T10:05:00.000Z"
    c = scene.counts(campaign_id)
    assert (c["delivered"], c["opened"]) == (1, 1)
    types = sorted(a["activity_type"] for a in scene.activities(ada["id"]))
    assert types == ["email_delivered", "email_opened"]


def test_an_event_before_the_sender_recorded_the_send_is_retried(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    scene.recipient(campaign_id, ada, status=RecipientStatus.SENDING)
    before = table_items(scene.table)

    with pytest.raises(NotYetSent):
        scene.deliver(scene.ses("Delivery", campaign_id, ada))

    assert table_items(scene.table) == before


# Contacts merged or deleted -----------------------------------------------------------------
def test_a_merged_contacts_activity_goes_to_the_survivor(scene: Scene) -> None:
    keep = scene.contact()
    lose = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, lose)
    merged = scene.api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})
    assert merged.status == 200, merged.text

    twice(scene, scene.ses("Open", campaign_id, lose, message_id))

    assert scene.recipient_item(campaign_id, lose["id"])["status"] == "opened"
    assert scene.counts(campaign_id)["opened"] == 1
    (activity,) = scene.activities(keep["id"])
    assert activity["activity_type"] == "email_opened"
    assert activity["contact_id"] == keep["id"]


def test_a_deleted_contacts_recipient_and_counters_still_change(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    assert scene.api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204

    first, again = twice(scene, scene.ses("Delivery", campaign_id, ada, message_id))

    assert (first["outcome"], again["outcome"]) == ("recorded", "duplicate")
    assert "activity_id" not in first
    assert scene.recipient_item(campaign_id, ada["id"])["status"] == "delivered"
    assert scene.counts(campaign_id)["delivered"] == 1
    assert scene.activities(ada["id"]) == []


# Not ours, or nobody's ----------------------------------------------------------------------
def test_events_without_our_tags_are_ignored(scene: Scene) -> None:
    ada = scene.contact()
    before = table_items(scene.table)
    for kind in ("Delivery", "Bounce", "Complaint"):
        assert scene.deliver(scene.ses(kind, None, ada))["outcome"] == "not_ours"
        assert scene.deliver(scene.ses(kind, None, ada, tenant=None))["outcome"] == "not_ours"
    # A test send's link names the contact "test": not a recipient either.
    test_send = scene.ses("Delivery", new_ulid(), ada)
    test_send["detail"]["mail"]["tags"]["contact_id"] = ["test"]
    assert scene.deliver(test_send)["outcome"] == "not_ours"
    assert table_items(scene.table) == before


def test_unknown_tenants_campaigns_and_recipients_are_ignored(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    scene.recipient(campaign_id, ada)
    other = scene.contact()
    before = table_items(scene.table)
    events = []
    for kind in ("Delivery", "Open", "Click", "Bounce", "Complaint", "Reject"):
        events += [
            scene.ses(kind, campaign_id, ada, tenant="globex"),  # unknown tenant
            scene.ses(kind, new_ulid(), ada),  # unknown (or deleted) campaign
            scene.ses(kind, campaign_id, other),  # not a recipient
        ]
    events.append(scene.ses("Bounce", new_ulid(), ada, bounceType="Transient"))
    for event in events:
        assert scene.deliver(event)["outcome"] == "missing", event["detail"]["eventType"]
    assert table_items(scene.table) == before


@pytest.mark.parametrize(
    "detail",
    [
        None,
        "text",
        {},
        {"eventType": "Delivery"},
        {"eventType": "Delivery", "mail": {}},
        {"eventType": "Bounce", "mail": {"messageId": "m"}},
        {"eventType": "Complaint", "mail": {"messageId": "m"}},
        {"eventType": "Bounce", "mail": {"messageId": "m"}, "bounce": {}},
    ],
)
def test_a_malformed_ses_event_is_poison(scene: Scene, detail: Any) -> None:
    event = {"source": "aws.ses", "detail-type": "Email Delivered", "detail": detail}
    with pytest.raises(PoisonEvent):
        scene.deliver(event)


# The complaint rate -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("delivered", "complained_before", "paused"),
    [
        (1250, 4, True),  # 5 of 1,250: 0.4 %
        (1000, 3, True),  # 4 of 1,000: 0.4 %
        (1000, 2, False),  # 3 of 1,000: exactly 0.3 % is not above
        (999, 9, False),  # 10 of 999: 1 %, but fewer than 1,000 deliveries
    ],
)
def test_the_complaint_rate_pauses_a_sending_campaign(
    scene: Scene, delivered: int, complained_before: int, paused: bool
) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign(delivered=delivered - 1, complained=complained_before)
    message_id = scene.recipient(campaign_id, ada)
    scene.deliver(scene.ses("Delivery", campaign_id, ada, message_id))

    result = scene.deliver(scene.ses("Complaint", campaign_id, ada, message_id))

    item = scene.campaigns.load(TENANT, campaign_id)
    assert result.get("paused", False) is paused
    assert item["state"] == ("paused" if paused else "sending")
    pauses = scene.events(keys.campaign(TENANT, campaign_id), "CampaignPaused")
    if not paused:
        assert pauses == []
        return
    complained = complained_before + 1
    rate = {1250: "0.4", 1000: "0.4"}[delivered]
    reason = (
        f"complaint rate {rate}% ({complained} of {delivered:,} delivered) is above 0.3%: "
        "paused to protect the sender's reputation"
    )
    assert item["state_reason"] == reason
    (event,) = pauses
    assert event["data"]["reason"] == reason
    assert event["metadata"]["actor"] == {"type": "system", "id": "email_events"}
    # Again: already paused, nothing more.
    scene.deliver(scene.ses("Complaint", campaign_id, ada, message_id))
    assert len(scene.events(keys.campaign(TENANT, campaign_id), "CampaignPaused")) == 1


def test_the_pause_reason_reads_as_the_spec_says() -> None:
    item = {counter("delivered"): 1250, counter("complained"): 5}
    assert pause_reason(item) == (
        "complaint rate 0.4% (5 of 1,250 delivered) is above 0.3%: paused to protect the "
        "sender's reputation"
    )


def test_a_complaint_never_pauses_a_campaign_that_is_not_sending(scene: Scene) -> None:
    ada = scene.contact()
    campaign_id = scene.campaign(delivered=2000, complained=100)
    scene.campaigns.pause(TENANT, campaign_id, "by hand", ORIGIN)
    scene.campaigns.cancel(TENANT, campaign_id, ORIGIN)
    message_id = scene.recipient(campaign_id, ada)
    result = scene.deliver(scene.ses("Complaint", campaign_id, ada, message_id))
    assert result["outcome"] == "recorded"
    assert scene.campaigns.load(TENANT, campaign_id)["state"] == "cancelled"


# ContactUnsubscribed --------------------------------------------------------------------------
def unsubscribe(scene: Scene, contact_id: str, campaign_id: str | None, method: Method) -> Any:
    """Unsubscribe as the unsubscribe function does; the ContactUnsubscribed it wrote, as the
    bus delivers it."""
    done = Unsubscriber(scene.table).unsubscribe(
        TENANT, contact_id, campaign_id, method, Origin.system("unsubscribe")
    )
    assert done.changed
    for raw in table_items(scene.table):
        item = from_item(raw)
        if item.get("event_id") == done.event_id and item.get("type") == "outbox_event":
            return delivered(item)
    raise AssertionError("no ContactUnsubscribed in the outbox")


def forget_deliveries(table: Any, tenant: str = TENANT) -> None:
    """Delete the consumer's idempotency records (a crash after the write loses them)."""
    partition = keys.idempotency_partition(tenant)
    for item in table.query_all(None, partition, sort_below="\U0010ffff"):
        key = key_attrs({"PK": item["PK"], "SK": item["SK"]})
        table.client.delete_item(TableName=table.name, Key=key)


def test_an_unsubscribe_is_logged_and_counted_once(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    scene.deliver(scene.ses("Open", campaign_id, ada, message_id))
    event = unsubscribe(scene, ada["id"], campaign_id, Method.ONE_CLICK)

    first = scene.deliver(event)
    scene.deliver(redelivered(event))
    forget_deliveries(scene.table)
    replayed = scene.deliver(redelivered(event))

    assert first["outcome"] == "recorded"
    assert replayed["outcome"] == "duplicate"
    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "unsubscribed"
    assert recipient["unsubscribed_at"] == event["detail"]["metadata"]["occurred_at"]
    assert scene.counts(campaign_id)["unsubscribed"] == 1
    unsubscribed = [a for a in scene.activities(ada["id"]) if a["activity_type"] == "unsubscribed"]
    assert len(unsubscribed) == 1
    assert unsubscribed[0]["method"] == "one_click"
    assert unsubscribed[0]["campaign_id"] == campaign_id


def test_the_pages_unsubscribe_is_a_link_activity_without_a_campaign(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    event = unsubscribe(scene, ada["id"], None, Method.PAGE)
    assert scene.deliver(event)["outcome"] == "recorded"
    (activity,) = scene.activities(ada["id"])
    assert activity["method"] == "link"
    assert "campaign_id" not in activity


def test_a_complaints_unsubscribe_is_logged_but_not_counted_again(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    scene.deliver(scene.ses("Complaint", campaign_id, ada, message_id))
    (outbox,) = [
        from_item(raw)
        for raw in table_items(scene.table)
        if from_item(raw).get("detail_type") == "ContactUnsubscribed"
    ]

    scene.deliver(delivered(outbox))

    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "complained"
    assert "unsubscribed_at" not in recipient
    c = scene.counts(campaign_id)
    assert (c["complained"], c["unsubscribed"]) == (1, 0)
    (activity,) = scene.activities(ada["id"])
    assert (activity["activity_type"], activity["method"]) == ("unsubscribed", "complaint")


def test_a_deleted_contacts_unsubscribe_still_counts(scene: Scene) -> None:
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    scene.recipient(campaign_id, ada)
    event = unsubscribe(scene, ada["id"], campaign_id, Method.ONE_CLICK)
    assert scene.api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204

    assert scene.deliver(event)["outcome"] == "recorded"
    assert scene.counts(campaign_id)["unsubscribed"] == 1
    assert scene.activities(ada["id"]) == []


def test_a_merged_contacts_unsubscribe_counts_on_its_campaign(scene: Scene) -> None:
    keep = scene.contact()
    lose = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    scene.recipient(campaign_id, lose)
    merged = scene.api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})
    assert merged.status == 200, merged.text
    event = unsubscribe(scene, lose["id"], campaign_id, Method.ONE_CLICK)

    assert scene.deliver(event)["outcome"] == "recorded"

    assert scene.counts(campaign_id)["unsubscribed"] == 1


# Concurrent delivery: one process per Lambda environment (tests/support/lambda_pool.py) -------
@pytest.fixture(scope="module")
def pool(email_events_module: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("email_events") as running:
        yield running


def at_once(pool: LambdaPool, events: list[dict[str, Any]]) -> list[Any]:
    barrier = pool.manager.Barrier(len(events))
    futures = [pool.executor.submit(deliver, event, barrier) for event in events]
    return [json.loads(f.result(timeout=120)) for f in futures]


def test_each_kind_delivered_twice_at_once_counts_once(scene: Scene, pool: LambdaPool) -> None:
    people = {kind: scene.contact() for kind in ("Delivery", "Open", "Click", "Bounce")}
    campaign_id = scene.campaign()
    events = []
    for kind, person in people.items():
        message_id = scene.recipient(campaign_id, person)
        event = scene.ses(kind, campaign_id, person, message_id)
        events += [event, redelivered(event)]

    results = at_once(pool, events)

    assert sorted(r["outcome"] for r in results) == ["duplicate"] * 4 + ["recorded"] * 4
    c = scene.counts(campaign_id)
    assert (c["delivered"], c["opened"], c["clicked"], c["bounced"]) == (1, 1, 1, 1)
    for person in people.values():
        assert len(scene.activities(person["id"])) == 1


def test_every_event_of_one_email_at_once(scene: Scene, pool: LambdaPool) -> None:
    """Delivery, Open, Click and a Complaint of one email, each twice, all at once: every
    step counted once, the status the highest of them, the contact unsubscribed once."""
    ada = scene.contact(email_consent="subscribed")
    campaign_id = scene.campaign()
    message_id = scene.recipient(campaign_id, ada)
    kinds = ("Delivery", "Open", "Click", "Complaint")
    events = [scene.ses(kind, campaign_id, ada, message_id) for kind in kinds]

    at_once(pool, [*events, *(redelivered(e) for e in events)])

    recipient = scene.recipient_item(campaign_id, ada["id"])
    assert recipient["status"] == "complained"
    c = scene.counts(campaign_id)
    assert (c["delivered"], c["opened"], c["clicked"], c["complained"]) == (1, 1, 1, 1)
    types = sorted(a["activity_type"] for a in scene.activities(ada["id"]))
    assert types == ["email_clicked", "email_delivered", "email_opened"]
    assert len(scene.events(keys.contact(TENANT, ada["id"]), "ContactUnsubscribed")) == 1
    contact = scene.table.get(keys.contact(TENANT, ada["id"]))
    assert contact["email_consent"] == "unsubscribed"
