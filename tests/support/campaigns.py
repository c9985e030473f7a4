"""What the campaign functions are invoked with, for tests that play AWS: SES's events as the
default bus delivers them, send-queue messages as the SQS event source hands them to the
sender, and a Lambda context with the time a real invocation has."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.support.api import LambdaContext

CONFIGURATION_SET = "crm-test-campaigns"  # conftest's SES_CONFIGURATION_SET
SENDER_DOMAIN = "mail.example.com"  # conftest's SENDER_DOMAIN, verified by mail_setup
SEND_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:crm-test-campaign-send"
_DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "Reject": "Email Rejected",
}


class LongContext(LambdaContext):
    """A Lambda context with minutes left: the dispatcher and the sender stop (and leave the
    rest to Lambda's retry) when less than half a minute is left."""

    def get_remaining_time_in_millis(self) -> int:
        return 280_000


def sender(tenant_id: str, name: str = "news", domain: str = SENDER_DOMAIN) -> str:
    """A from address of the tenant's namespace on the shared sending domain."""
    return f"{tenant_id.lower()}.{name}@{domain}"


def ses_event(
    kind: str,
    tenant_id: str,
    campaign_id: str,
    contact_id: str,
    email: str,
    message_id: str,
) -> dict[str, Any]:
    """An SES event of a campaign email (Delivery, a permanent Bounce or a Complaint), as the
    default bus delivers it, tagged as the sender tags each email."""
    detail: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": "2026-11-22T10:00:00.000Z",
            "source": sender(tenant_id),
            "messageId": message_id,
            "destination": [email],
            "commonHeaders": {"to": [email], "messageId": message_id, "subject": "Spring"},
            "tags": {
                "ses:configuration-set": [CONFIGURATION_SET],
                "tenant_id": [tenant_id],
                "campaign_id": [campaign_id],
                "contact_id": [contact_id],
            },
        },
    }
    if kind == "Delivery":
        detail["delivery"] = {"timestamp": "2026-11-22T10:00:02.000Z", "recipients": [email]}
    elif kind == "Bounce":
        detail["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1"}],
            "timestamp": "2026-11-22T10:00:03.000Z",
        }
    elif kind == "Complaint":
        detail["complaint"] = {
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-11-22T10:10:00.000Z",
        }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _DETAIL_TYPES.get(kind, kind),
        "source": "aws.ses",
        "account": "123456789012",
        "time": "2026-11-22T10:00:10Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def send_queue_record(body: dict[str, Any]) -> dict[str, Any]:
    """One send-queue message (`SendBatch`) as the SQS event source gives it to Lambda."""
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": "AROAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": SEND_QUEUE_ARN,
        "awsRegion": "us-east-1",
    }
