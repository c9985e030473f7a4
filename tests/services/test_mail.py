"""SES through a running local cloud (tests/fixtures/templates/mail.yaml): the mailbox page,
and the Send and Delivery events of a configuration set with an EventBridge destination."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import mail
from infra.local.dev import LocalCloud
from infra.ops.local_http import request
from tests.services.conftest import Inbox, inbox, local_cloud

SENDER = "News <news@svc-mail.example.com>"
UNSUBSCRIBE = (
    "<https://crm.example.com/unsubscribe?t=abc&x=1>, <mailto:unsubscribe@svc-mail.example.com>"
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud("mail.yaml", tmp_path_factory.mktemp("mail-state")) as running:
        assert running.context is not None
        assert running.gateway is not None
        service = mail.build(running.context)
        # Built after the gateway (dev.py builds services before it): hand it the new page.
        running.gateway.local_pages.update(running.context.pages)
        service.start()
        try:
            yield running
        finally:
            service.stop()


@pytest.fixture(scope="module")
def observed(cloud: LocalCloud) -> Inbox:
    """SES events, as the template's rule on the default bus puts them on its queue."""
    assert cloud.provisioned is not None
    if "SesEvents" in cloud.provisioned.skipped:  # a provisioner without rules: the same by hand
        events = cloud.client("events")
        events.put_rule(
            Name="svc-mail-ses-events", EventPattern=json.dumps({"source": ["aws.ses"]})
        )
        events.put_targets(
            Rule="svc-mail-ses-events",
            Targets=[
                {"Id": "observed", "Arn": "arn:aws:sqs:us-east-1:123456789012:svc-mail-observed"}
            ],
        )
    return inbox(cloud, "svc-mail-observed")


def send(cloud: LocalCloud, **event: Any) -> str:
    message = {
        "from": SENDER,
        "to": ["Ana <ana@example.org>"],
        "text": "Hello Ana,\nour news.",
        "html": '<p>Hello <b>Ana</b>, <a href="https://crm.example.com/news">read</a></p>',
        **event,
    }
    result = cloud.runners.invoke("Mailer", message)
    assert result.ok, result.error
    return str(result.payload["MessageId"])


def mailbox(cloud: LocalCloud, accept: str) -> tuple[int, dict[str, str], Any]:
    assert cloud.running is not None
    return request("GET", f"{cloud.running.api_url}/_local/mailbox", None, {"Accept": accept})


def test_a_raw_email_is_in_the_mailbox_with_its_unsubscribe_headers(
    cloud: LocalCloud, observed: Inbox
) -> None:
    subject = f"Weekly news {uuid.uuid4().hex[:8]}"
    message_id = send(
        cloud,
        kind="raw",
        subject=subject,
        headers={
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    status, headers, listed = mailbox(cloud, "application/json")
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/json"
    newest = listed[0]
    assert newest["id"] == message_id
    assert newest["subject"] == subject
    assert newest["from"] == SENDER
    assert newest["to"] == ["Ana <ana@example.org>"]
    assert newest["headers"]["List-Unsubscribe"] == UNSUBSCRIBE
    assert newest["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert newest["text"].strip() == "Hello Ana,\nour news."
    assert '<a href="https://crm.example.com/news">read</a>' in newest["html"]
    assert newest["configuration_set"] is None
    assert newest["sent_at"].endswith("Z")

    status, headers, page = mailbox(cloud, "text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200
    text = page if isinstance(page, str) else page.decode()
    assert f"<h2>{subject}</h2>" in text
    assert "List-Unsubscribe-Post" in text
    # The unsubscribe link is clickable, its "&" escaped; the body is in a sandboxed iframe.
    assert 'href="https://crm.example.com/unsubscribe?t=abc&amp;x=1"' in text
    assert '<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"' in text
    assert 'srcdoc="&lt;base target=&quot;_blank&quot;&gt;&lt;p&gt;Hello &lt;b&gt;Ana' in text

    # No configuration set: no SES event.
    assert [e for e in observed.quiet(1.0) if e["detail"]["mail"]["messageId"] == message_id] == []


def test_the_page_escapes_what_an_email_says(cloud: LocalCloud) -> None:
    send(cloud, kind="raw", subject='<script>alert("x")</script> & more', html="<p>x</p>")
    _, _, page = mailbox(cloud, "text/html")
    text = page if isinstance(page, str) else page.decode()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in text


def test_a_configuration_set_puts_send_and_delivery_events_on_the_bus(
    cloud: LocalCloud, observed: Inbox
) -> None:
    subject = f"Tracked {uuid.uuid4().hex[:8]}"
    message_id = send(cloud, kind="simple", subject=subject, configuration_set="svc-mail-tracked")

    def of_this(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in seen if e["detail"]["mail"]["messageId"] == message_id]

    events = of_this(observed.wait_for(lambda s: len(of_this(s)) >= 2, what="two SES events"))
    assert len(of_this(observed.seen + observed.quiet(0.5))) == 2
    sent, delivered = sorted(events, key=lambda e: e["detail"]["eventType"] != "Send")
    for event, detail_type in ((sent, "Email Sent"), (delivered, "Email Delivered")):
        assert event["source"] == "aws.ses"
        assert event["detail-type"] == detail_type
        assert event["resources"] == [
            "arn:aws:ses:us-east-1:123456789012:configuration-set/svc-mail-tracked"
        ]
        common = event["detail"]["mail"]["commonHeaders"]
        assert common["subject"] == subject
        assert common["from"] == [SENDER]
        assert common["to"] == ["Ana <ana@example.org>"]
        assert event["detail"]["mail"]["source"] == "news@svc-mail.example.com"
        assert event["detail"]["mail"]["destination"] == ["Ana <ana@example.org>"]
        assert event["detail"]["mail"]["tags"]["ses:configuration-set"] == ["svc-mail-tracked"]
    assert sent["detail"]["eventType"] == "Send"
    assert sent["detail"]["send"] == {}
    assert delivered["detail"]["eventType"] == "Delivery"
    assert delivered["detail"]["delivery"]["recipients"] == ["Ana <ana@example.org>"]
    assert delivered["detail"]["delivery"]["smtpResponse"].startswith("250")

    # moto keeps only a Simple email's HTML body; the mailbox has its text part as well.
    _, _, listed = mailbox(cloud, "application/json")
    (entry,) = [e for e in listed if e["id"] == message_id]
    assert entry["configuration_set"] == "svc-mail-tracked"
    assert entry["text"] == "Hello Ana,\nour news."
    assert entry["html"].startswith("<p>Hello")
