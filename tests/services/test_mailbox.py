"""The mailbox on a bare local endpoint: SES v1 sends, a raw message's configuration set
header, an identity's default configuration set, and what the page shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from infra.aws import boto_client
from infra.local.async_invoke import AsyncInvoker
from infra.local.context import CloudContext
from infra.local.endpoint import LocalEndpoint
from infra.local.invocation import InvokeResult
from infra.local.mail import MailService, build
from infra.topology import Resolver
from tests.services.conftest import Inbox
from tests.support.local import running_endpoint

DOMAIN = "svc-mailbox.example.com"
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Identity": {
            "Type": "AWS::SES::EmailIdentity",
            "Properties": {
                "EmailIdentity": DOMAIN,
                "ConfigurationSetAttributes": {"ConfigurationSetName": "svc-mailbox-default"},
            },
        },
        **{
            f"{name.title().replace('-', '')}Events": {
                "Type": "AWS::SES::ConfigurationSetEventDestination",
                "Properties": {
                    "ConfigurationSetName": name,
                    "EventDestination": {
                        "Name": f"{name}-bus",
                        "Enabled": True,
                        "MatchingEventTypes": ["send"],  # no "delivery": Send only
                        "EventBridgeDestination": {
                            "EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"
                        },
                    },
                },
            }
            for name in ("svc-mailbox-default", "svc-mailbox-header")
        },
    }
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with running_endpoint() as local:
        yield local


@pytest.fixture(scope="module")
def context(endpoint: LocalEndpoint) -> CloudContext:
    def client(service: str) -> Any:
        return boto_client(service, endpoint.url)

    def invoke(function: str, event: Any) -> InvokeResult:
        return InvokeResult()

    return CloudContext(
        template=TEMPLATE,
        resolver=Resolver(TEMPLATE, {}),
        functions=[],
        invoke=invoke,
        async_invoker=AsyncInvoker(invoke, [], client),
        client=client,
        endpoint_url=endpoint.url,
        log=lambda line: None,
    )


@pytest.fixture(scope="module")
def service(context: CloudContext) -> Iterator[MailService]:
    context.client("sesv2").create_email_identity(EmailIdentity=DOMAIN)
    mail = build(context)
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


@pytest.fixture(scope="module")
def observed(context: CloudContext) -> Inbox:
    sqs, events = context.client("sqs"), context.client("events")
    url = sqs.create_queue(QueueName="svc-mailbox-observed")["QueueUrl"]
    events.put_rule(Name="svc-mailbox-ses", EventPattern=json.dumps({"source": ["aws.ses"]}))
    events.put_targets(
        Rule="svc-mailbox-ses",
        Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:svc-mailbox-observed"}],
    )
    return Inbox(sqs, url)


def entry(service: MailService, message_id: str) -> dict[str, Any]:
    (found,) = [m.as_json() for m in service.emails() if m.id == message_id]
    return found


def test_a_v1_email_keeps_both_parts_and_the_identity_default_configuration_set(
    context: CloudContext, service: MailService, observed: Inbox
) -> None:
    message_id = context.client("ses").send_email(
        Source=f"crm@{DOMAIN}",
        Destination={"ToAddresses": ["ana@example.org"], "BccAddresses": ["audit@example.org"]},
        Message={
            "Subject": {"Data": "Your quote"},
            "Body": {"Text": {"Data": "plain words"}, "Html": {"Data": "<p>html words</p>"}},
        },
    )["MessageId"]
    found = entry(service, message_id)
    assert (found["text"], found["html"]) == ("plain words", "<p>html words</p>")
    assert found["bcc"] == ["audit@example.org"]
    assert found["configuration_set"] == "svc-mailbox-default"  # the identity's default
    events = observed.wait_for(
        lambda s: any(e["detail"]["mail"]["messageId"] == message_id for e in s), what="Send"
    )
    mine = [e for e in events if e["detail"]["mail"]["messageId"] == message_id]
    assert [e["detail-type"] for e in mine] == ["Email Sent"]  # MatchingEventTypes: send only
    assert sorted(mine[0]["detail"]["mail"]["destination"]) == [
        "ana@example.org",
        "audit@example.org",
    ]


def test_a_raw_message_names_its_configuration_set_in_a_header(
    context: CloudContext, service: MailService
) -> None:
    message = EmailMessage()
    message["From"] = f"Éloïse <sales@{DOMAIN}>"
    message["To"] = "Bob <bob@example.org>, carla@example.org"
    message["Subject"] = "Devis n°42 ✓"
    message["X-SES-CONFIGURATION-SET"] = "svc-mailbox-header"
    message.set_content("see attachment")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="q.pdf")
    message_id = context.client("ses").send_raw_email(RawMessage={"Data": message.as_bytes()})[
        "MessageId"
    ]
    found = entry(service, message_id)
    assert found["subject"] == "Devis n°42 ✓"
    assert found["from"] == f"Éloïse <sales@{DOMAIN}>"
    assert found["to"] == ["Bob <bob@example.org>", "carla@example.org"]
    assert found["configuration_set"] == "svc-mailbox-header"
    assert found["attachments"] == ["q.pdf"]
    assert found["html"] is None
    assert found["text"].strip() == "see attachment"


def test_the_page_lists_newest_first(context: CloudContext, service: MailService) -> None:
    ses = context.client("sesv2")
    ids = [
        ses.send_email(
            FromEmailAddress=f"crm@{DOMAIN}",
            Destination={"ToAddresses": ["ana@example.org"]},
            Content={"Simple": {"Subject": {"Data": f"n{i}"}, "Body": {"Text": {"Data": "x"}}}},
        )["MessageId"]
        for i in range(3)
    ]

    class Request:
        headers = {"accept": "application/json"}
        query: dict[str, list[str]] = {}

    status, headers, body = service.page(Request())
    assert status == 200
    listed = [m["id"] for m in json.loads(body)]
    assert listed[:3] == ids[::-1]
    Request.headers = {"accept": "text/html"}
    _, headers, page = service.page(Request())
    assert headers["Content-Type"].startswith("text/html")
    assert page.decode().index("<h2>n2</h2>") < page.decode().index("<h2>n0</h2>")
