"""infra/local/mail.py's SES events, without a cloud: the mailbox simulator's outcomes, the event
shapes SES publishes (Send, Delivery, Bounce, Complaint), the tags, and the event types a
destination's MatchingEventTypes let through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.context import CloudContext
from infra.local.mail import (
    DETAIL_TYPES,
    SUPPRESSED_DIAGNOSTIC,
    Email,
    EventDestination,
    MailService,
    event_destinations,
    message_tags,
    ses_events,
    simulated,
)
from infra.topology import Resolver

CONFIGURATION_SET = "crm-local-campaigns"
SIM = "simulator.amazonses.com"
TAGS = {"tenant_id": "acme", "campaign_id": "01CAMP", "contact_id": "01CONT"}


def mail(*destinations: str, tags: dict[str, str] | None = None) -> Email:
    return Email(
        id="0100-local-message",
        sender="News <news@example.com>",
        to=list(destinations),
        cc=[],
        bcc=[],
        subject="Spring sale",
        headers=[("From", "News <news@example.com>"), ("Subject", "Spring sale")],
        html="<p>Hi</p>",
        text="Hi",
        sent_at=datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
        source="news@example.com",
        destinations=list(destinations),
        configuration_set=CONFIGURATION_SET,
        tags=dict(TAGS if tags is None else tags),
    )


@pytest.mark.parametrize(
    ("address", "outcome"),
    [
        (f"success@{SIM}", "delivery"),
        (f"bounce@{SIM}", "bounce"),
        (f"Bounce+campaign-7@{SIM.upper()}", "bounce"),  # labels and case change nothing
        (f"Ana <complaint@{SIM}>", "complaint"),
        (f"suppressionlist@{SIM}", "suppressed"),
        (f"ooto@{SIM}", "delivery"),
        ("bounce@example.com", "delivery"),  # only the simulator's domain
        ("ana@example.org", "delivery"),
    ],
)
def test_the_mailbox_simulator(address: str, outcome: str) -> None:
    assert simulated(address) == outcome


def kinds(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kind for kind, _ in events]


def test_an_ordinary_address_is_sent_and_delivered() -> None:
    events = ses_events(mail("Ana <ana@example.org>"), CONFIGURATION_SET)
    assert kinds(events) == ["Send", "Delivery"]
    (_, sent), (_, delivered) = events
    assert sent["send"] == {}
    assert delivered["delivery"]["recipients"] == ["Ana <ana@example.org>"]
    assert delivered["delivery"]["smtpResponse"].startswith("250 ")


def test_a_bounce_is_permanent_and_general() -> None:
    events = ses_events(mail(f"bounce@{SIM}"), CONFIGURATION_SET)
    assert kinds(events) == ["Send", "Bounce"]
    bounce = events[1][1]
    assert bounce["eventType"] == "Bounce"
    assert bounce["bounce"]["bounceType"] == "Permanent"
    assert bounce["bounce"]["bounceSubType"] == "General"
    assert bounce["bounce"]["bouncedRecipients"] == [
        {
            "emailAddress": f"bounce@{SIM}",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
        }
    ]
    assert {"timestamp", "feedbackId", "reportingMTA"} <= set(bounce["bounce"])


def test_a_complaint_follows_a_delivery() -> None:
    events = ses_events(mail(f"Ana <complaint@{SIM}>"), CONFIGURATION_SET)
    assert kinds(events) == ["Send", "Delivery", "Complaint"]
    complaint = events[2][1]["complaint"]
    assert complaint["complainedRecipients"] == [{"emailAddress": f"complaint@{SIM}"}]
    assert complaint["complaintFeedbackType"] == "abuse"
    assert complaint["complaintSubType"] is None
    assert {"feedbackId", "timestamp", "userAgent", "arrivalDate"} <= set(complaint)


def test_an_address_on_the_suppression_list_bounces_unsent() -> None:
    events = ses_events(mail(f"suppressionlist@{SIM}"), CONFIGURATION_SET)
    assert kinds(events) == ["Send", "Bounce"]
    bounce = events[1][1]["bounce"]
    assert (bounce["bounceType"], bounce["bounceSubType"]) == (
        "Permanent",
        "OnAccountSuppressionList",
    )
    (recipient,) = bounce["bouncedRecipients"]
    assert recipient["emailAddress"] == f"suppressionlist@{SIM}"
    assert recipient["diagnosticCode"] == SUPPRESSED_DIAGNOSTIC


def test_one_email_to_several_recipients() -> None:
    everyone = (
        "ana@example.org",
        f"bounce@{SIM}",
        f"complaint@{SIM}",
        f"suppressionlist@{SIM}",
        f"success@{SIM}",
    )
    events = ses_events(mail(*everyone), CONFIGURATION_SET)
    assert kinds(events) == ["Send", "Delivery", "Bounce", "Bounce", "Complaint"]
    assert events[1][1]["delivery"]["recipients"] == [
        "ana@example.org",
        f"complaint@{SIM}",
        f"success@{SIM}",
    ]
    subtypes = [detail["bounce"]["bounceSubType"] for kind, detail in events if kind == "Bounce"]
    assert subtypes == ["General", "OnAccountSuppressionList"]


def test_every_event_carries_the_mail_and_its_tags_as_ses_does() -> None:
    for kind, detail in ses_events(mail(f"complaint@{SIM}", f"bounce@{SIM}"), CONFIGURATION_SET):
        assert detail["eventType"] == kind
        assert kind in DETAIL_TYPES
        carried = detail["mail"]
        assert carried["messageId"] == "0100-local-message"
        assert carried["source"] == "news@example.com"
        assert carried["sourceArn"].endswith(":identity/example.com")
        assert carried["timestamp"] == "2030-01-07T09:00:00.000Z"
        assert carried["commonHeaders"]["subject"] == "Spring sale"
        assert carried["tags"] == {
            "ses:configuration-set": [CONFIGURATION_SET],
            "ses:source-ip": ["127.0.0.1"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["local"],
            "tenant_id": ["acme"],
            "campaign_id": ["01CAMP"],
            "contact_id": ["01CONT"],
        }
    assert DETAIL_TYPES == {
        "Send": "Email Sent",
        "Delivery": "Email Delivered",
        "Bounce": "Email Bounced",
        "Complaint": "Email Complaint Received",
    }


def test_a_raw_message_may_name_its_tags_in_a_header() -> None:
    headers = [("Subject", "x"), ("X-SES-MESSAGE-TAGS", "tenant_id=acme, campaign_id = 01C")]
    assert message_tags(headers) == {"tenant_id": "acme", "campaign_id": "01C"}
    assert message_tags([("Subject", "x")]) == {}


# Which events a destination takes -------------------------------------------------------------
class _Events:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def _context(template: dict[str, Any], events: _Events) -> CloudContext:
    return CloudContext(
        template=template,
        resolver=Resolver(template, {}),
        functions=[],
        invoke=lambda function, event: None,  # type: ignore[arg-type,return-value]
        async_invoker=None,  # type: ignore[arg-type]
        client=lambda service: events,
        endpoint_url="http://127.0.0.1:0",
        log=lambda line: None,
    )


def _destination(types: list[str], enabled: Any = True) -> dict[str, Any]:
    return {
        "Type": "AWS::SES::ConfigurationSetEventDestination",
        "Properties": {
            "ConfigurationSetName": CONFIGURATION_SET,
            "EventDestination": {
                "Name": "to-eventbridge",
                "Enabled": enabled,
                "MatchingEventTypes": types,
                "EventBridgeDestination": {
                    "EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"
                },
            },
        },
    }


def test_matching_event_types_in_either_case() -> None:
    template = {
        "Resources": {
            "Lower": _destination(["send", "bounce"]),
            "Upper": _destination(["DELIVERY", "COMPLAINT"]),
            "Off": _destination(["send"], enabled=False),  # CloudFormation's default
        }
    }
    found = {d.event_types for d in event_destinations(_context(template, _Events()))}
    assert found == {frozenset({"send", "bounce"}), frozenset({"delivery", "complaint"})}


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["send", "bounce"], ["Email Sent", "Email Bounced", "Email Bounced"]),
        (["DELIVERY", "COMPLAINT"], ["Email Delivered", "Email Complaint Received"]),
        (
            ["send", "delivery", "bounce", "complaint", "reject", "open", "click"],
            [
                "Email Sent",
                "Email Delivered",
                "Email Bounced",
                "Email Bounced",
                "Email Complaint Received",
            ],
        ),
    ],
)
def test_only_the_event_types_the_destination_names_are_put(
    types: list[str], expected: list[str]
) -> None:
    events = _Events()
    ctx = _context({"Resources": {}}, events)
    destination = EventDestination(
        configuration_set=CONFIGURATION_SET,
        name="to-eventbridge",
        bus_arn="arn:aws:events:us-east-1:123456789012:event-bus/default",
        event_types=frozenset(t.lower() for t in types),
    )
    service = MailService(ctx, [destination])
    service._emit(mail(f"complaint@{SIM}", f"bounce@{SIM}", f"suppressionlist@{SIM}"))
    assert [e["DetailType"] for e in events.entries] == expected
    for entry in events.entries:
        assert entry["Source"] == "aws.ses"
        assert entry["EventBusName"] == destination.bus_arn
        assert entry["Resources"] == [
            f"arn:aws:ses:us-east-1:123456789012:configuration-set/{CONFIGURATION_SET}"
        ]
    other_set = mail(f"bounce@{SIM}")
    other_set.configuration_set = "another-set"
    events.entries.clear()
    service._emit(other_set)
    assert events.entries == []
