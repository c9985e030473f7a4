"""campaign_sender: each recipient mailed at most once and counted once, whatever is
delivered twice, at once, throttled, paused, interrupted or raced by SES's own events;
consent, suppression and addresses checked at send time; the headers and footer every
campaign email carries.

A campaign is dispatched by the real dispatcher (tests/integration/test_campaign_dispatch.py's
Scene); the send queue's messages are read from moto and handed to the sender as the SQS
event source does (batches of 5, partial batch responses). What SES sent is read from
moto's SES backend.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from crm_core import keys
from crm_core.campaigns import recipients, sending, unsubscribe_tokens
from crm_core.campaigns.campaign_models import RecipientStatus
from crm_core.campaigns.suppression import SuppressionReason, suppress_put
from crm_core.clock import format_iso, now_iso
from crm_core.dynamo import key_attrs
from crm_core.table import Table
from tests.integration.test_campaign_dispatch import (  # noqa: F401 - a fixture
    ORIGIN,
    POSTAL,
    SENDER_DOMAIN,
    TENANT,
    Context,
    Scene,
    dispatcher_module,
    enqueued_ids,
)
from tests.support.api import Api
from tests.support.aws_calls import count_calls
from tests.support.faults import Crashing, Meddling
from tests.support.lambda_pool import LambdaPool, lambda_pool

if TYPE_CHECKING:
    # Not imported when a worker process loads this module: conftest resets the endpoint.
    from tests.conftest import ConsumerFunction

BATCH_SIZE = 5  # template.yaml's SQS event source of the sender
ACCOUNT = "123456789012"  # moto's default account
SCRIPT = "<script>alert(1)</script>"


class Mail(Scene):
    """The Scene, and the sender its send queue's messages are delivered to."""

    def __init__(self, *args: Any, sender: ModuleType, queue_arn: str) -> None:
        super().__init__(*args)
        self.sender = sender
        self.queue_arn = queue_arn

    def start(self, campaign_id: str) -> None:
        """Send the campaign now, and dispatch it (its messages wait on the queue)."""
        self.dispatch(self.send_now(campaign_id))

    def records(self) -> list[dict[str, Any]]:
        """The queue's messages, taken off it, as the SQS event source gives them to Lambda."""
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in self.received()
        ]

    def deliver(self, records: list[dict[str, Any]], context: Any = None) -> list[str]:
        """One invocation of the sender with `records`: the ids of the messages it failed."""
        response = self.sender.handler({"Records": records}, context or Context(110_000))
        return [f["itemIdentifier"] for f in response["batchItemFailures"]]

    def deliver_all(self) -> list[dict[str, Any]]:
        """Every waiting message, in batches of 5: the records the sender failed."""
        records = self.records()
        failed = []
        for start in range(0, len(records), BATCH_SIZE):
            batch = records[start : start + BATCH_SIZE]
            ids = set(self.deliver(batch))
            failed += [r for r in batch if r["messageId"] in ids]
        return failed

    def emails(self, campaign_id: str) -> list[EmailMessage]:
        """What SES sent for the campaign, as its recipients read it."""
        from moto.ses.models import ses_backends

        sent = ses_backends[ACCOUNT]["us-east-1"].sent_messages
        parsed = [
            email.message_from_string(m.raw_data, policy=email.policy.default)
            for m in sent
            if hasattr(m, "raw_data")
        ]
        return [m for m in parsed if m["X-CRM-Campaign"] == campaign_id]

    def counts(self, campaign_id: str) -> dict[str, int]:
        item = self.item(campaign_id)
        return {k[len("count_") :]: v for k, v in item.items() if k.startswith("count_")}


def record_of(body: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A record of a message that never went through the queue (a hand-made duplicate)."""
    text = json.dumps(body)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AROAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


@pytest.fixture(scope="module")
def sender_module(contacts_module: ModuleType) -> ConsumerFunction:
    from tests.conftest import load_consumer

    return load_consumer("campaign_sender")


def _verified_sender_domain() -> None:
    ses = boto3.client("sesv2")
    identities = {i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]}
    if SENDER_DOMAIN not in identities:
        ses.create_email_identity(EmailIdentity=SENDER_DOMAIN)


@pytest.fixture
def mail(
    table: Table,
    dispatcher_module: ConsumerFunction,  # noqa: F811 - the fixture imported above
    sender_module: ConsumerFunction,
    api: Api,
    campaigns_api: Api,
    mail_setup: dict[str, str],
) -> Mail:
    _verified_sender_domain()
    queue_url = mail_setup["send_queue_url"]
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    made = Mail(
        table, dispatcher_module, api, campaigns_api, queue_url, sender=sender_module, queue_arn=arn
    )
    made.received()  # an earlier test's messages
    made.settings()
    return made


def token_secret() -> bytes:
    key = unsubscribe_tokens.TokenKey(lambda: boto3.client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"])
    return key.secret


def assert_sent_once(mail: Mail, campaign_id: str, contact_ids: list[str]) -> None:
    """Each of `contact_ids` got exactly one email, `sent` and counted once."""
    emails = mail.emails(campaign_id)
    found = mail.recipients(campaign_id)
    assert Counter(m["To"] for m in emails) == Counter(found[c]["email"] for c in contact_ids)
    for contact_id in contact_ids:
        recipient = found[contact_id]
        assert recipient["status"] == "sent", recipient
        assert recipient["message_id"]
        assert recipient["sent_at"]
    assert mail.counts(campaign_id)["sent"] == len(contact_ids)


# The emails ---------------------------------------------------------------------------------
def test_subscribed_contacts_get_one_email_each_and_the_campaign_ends_sent(mail: Mail) -> None:
    subscribed = [
        mail.contact(first_name="Ada", attributes={"plan": "pro"}),
        mail.contact(first_name=SCRIPT),
        mail.contact(),
    ]
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)

    assert mail.deliver_all() == []

    assert_sent_once(mail, campaign_id, subscribed)
    item = mail.item(campaign_id)
    assert item["state"] == "sent"
    assert item["sent_at"]
    assert mail.counts(campaign_id) == {
        **dict.fromkeys(mail.counts(campaign_id), 0),
        "audience": 3,
        "sent": 3,
    }
    (sent_event,) = mail.outbox(campaign_id, "CampaignSent")
    assert json.loads(sent_event["detail"])["data"]["stats"]["sent"] == 3
    recipient = mail.recipients(campaign_id)[subscribed[0]]
    assert recipient["GSI3PK"] == keys.recipients_in_status(TENANT, campaign_id, "sent")
    assert recipient["status_rank"] == 2


def test_every_email_carries_a_working_one_click_unsubscribe_and_the_footer(mail: Mail) -> None:
    ada = mail.contact(first_name="Ada", attributes={"plan": "pro"})
    script = mail.contact(first_name=SCRIPT)
    mail.settings(company_name="Acme Inc.")
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    assert mail.deliver_all() == []

    secret = token_secret()
    by_contact = {}
    for message in mail.emails(campaign_id):
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = str(message["List-Unsubscribe"]).strip("<>")
        url = urlparse(link)
        assert (url.scheme, url.netloc, url.path) == ("https", "api.crm.test", "/unsubscribe")
        claims = unsubscribe_tokens.verify(secret, parse_qs(url.query)["token"][0])
        assert (claims.tenant_id, claims.campaign_id) == (TENANT, campaign_id)
        assert message["From"] == f"Acme News <acme.news@{SENDER_DOMAIN}>"
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for part in (html, text):
            assert POSTAL in part
            assert "Acme Inc." in part
        assert link in text
        by_contact[claims.contact_id] = (message, html)
    assert sorted(by_contact) == sorted([ada, script])
    ada_message, ada_html = by_contact[ada]
    assert ada_message["Subject"] == "Hello Ada"
    assert "<p>Hi Ada</p><p>pro</p>" in ada_html
    _, script_html = by_contact[script]
    assert SCRIPT not in script_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script_html


def test_the_request_names_the_configuration_set_and_tags_the_recipient(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    ses = FlakySes(mail.sender.context.sender.ses, {})
    monkeypatch.setattr(mail.sender.context.sender, "ses", ses)
    mail.start(campaign_id)
    mail.deliver_all()

    (request,) = ses.requests
    assert request["ConfigurationSetName"] == os.environ["SES_CONFIGURATION_SET"]
    assert request["FromEmailAddress"] == f"acme.news@{SENDER_DOMAIN}"
    assert request["Destination"] == {
        "ToAddresses": [mail.recipients(campaign_id)[contact_id]["email"]]
    }
    assert {t["Name"]: t["Value"] for t in request["EmailTags"]} == {
        "tenant_id": TENANT,
        "campaign_id": campaign_id,
        "contact_id": contact_id,
    }
    assert set(request["Content"]) == {"Raw"}


def _suppress(mail: Mail, contact_id: str, reason: SuppressionReason, upper: bool = False) -> None:
    """The contact's address on the suppression list (as SES reported it: any case)."""
    contact = mail.table.get(keys.contact(TENANT, contact_id))
    assert contact is not None
    address = contact["email"].upper() if upper else contact["email"]
    mail.table.transact([suppress_put(mail.table.op, TENANT, address, reason, now_iso())])


def test_who_is_skipped_and_why(mail: Mail) -> None:
    """Consent, addresses, suppression and the contact itself, as they are at send time."""
    sent = mail.contact()
    unknown = mail.contact(email_consent="unknown")
    unsubscribed = mail.contact(email_consent="unsubscribed")
    phone_only = mail.contact(email=None, phone="+14155550100")
    suppressed = mail.contact()
    unsubscribes_later = mail.contact()
    deleted_later = mail.contact()
    merged_later, survivor = mail.contact(), mail.contact()
    suppressed_later = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    _suppress(mail, suppressed, SuppressionReason.COMPLAINT, upper=True)
    mail.start(campaign_id)
    # Between the dispatch and the send:
    mail.contacts.update(
        TENANT, unsubscribes_later, {"email_consent": "unsubscribed"}, None, ORIGIN
    )
    mail.contacts.delete(TENANT, deleted_later, None, ORIGIN)
    mail.contacts.merge(TENANT, survivor, merged_later, None, ORIGIN)
    _suppress(mail, suppressed_later, SuppressionReason.HARD_BOUNCE)

    assert mail.deliver_all() == []

    found = mail.recipients(campaign_id)
    reasons = {c: r.get("skip_reason") for c, r in found.items() if r["status"] == "skipped"}
    assert reasons == {
        unknown: "consent",
        unsubscribed: "consent",
        unsubscribes_later: "consent",
        phone_only: "no_email",
        suppressed: "suppressed",
        suppressed_later: "suppressed",
        deleted_later: "missing",
        merged_later: "missing",
    }
    assert all(found[c]["skipped_at"] for c in reasons)
    assert_sent_once(mail, campaign_id, [sent, survivor])
    assert mail.counts(campaign_id)["skipped"] == 8
    assert mail.item(campaign_id)["state"] == "sent"


def test_a_campaign_everyone_is_skipped_from_ends_sent_with_nothing_sent(mail: Mail) -> None:
    mail.contact(email_consent="unknown")
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    assert mail.deliver_all() == []
    assert mail.item(campaign_id)["state"] == "sent"
    assert mail.counts(campaign_id)["skipped"] == 1
    assert mail.emails(campaign_id) == []


# Exactly once ---------------------------------------------------------------------------------
def test_a_message_delivered_again_sends_nothing_more(mail: Mail) -> None:
    contacts = [mail.contact() for _ in range(3)] + [mail.contact(email_consent="unknown")]
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    (record,) = mail.records()

    assert mail.deliver([record]) == []
    assert mail.deliver([record, record]) == []  # SQS at least once; the dispatcher reruns

    assert_sent_once(mail, campaign_id, contacts[:3])
    assert mail.counts(campaign_id)["skipped"] == 1
    assert len(mail.outbox(campaign_id, "CampaignSent")) == 1


@pytest.fixture(scope="module")
def pool(sender_module: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("campaign_sender") as running:
        yield running


def _send_in_worker(event: dict[str, Any], barrier: Any) -> str:
    """In a worker: one invocation of its warm sender."""
    from tests.support import lambda_pool as environment

    barrier.wait(60)
    return json.dumps(environment._handler(event, Context(110_000)))


def test_deliveries_at_once_send_each_recipient_once(mail: Mail, pool: LambdaPool) -> None:
    contacts = [mail.contact() for _ in range(6)]
    skipped = [mail.contact(email_consent="unknown") for _ in range(2)]
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    (record,) = mail.records()
    copies = [{"Records": [{**record, "messageId": str(uuid.uuid4())}]} for _ in range(6)]
    barrier = pool.manager.Barrier(len(copies))

    futures = [pool.executor.submit(_send_in_worker, event, barrier) for event in copies]
    results = [json.loads(f.result(timeout=120)) for f in futures]

    assert all(r == {"batchItemFailures": []} for r in results), results
    assert_sent_once(mail, campaign_id, contacts)
    counts = mail.counts(campaign_id)
    assert (counts["sent"], counts["skipped"], counts["failed"]) == (6, 2, 0)
    assert all(mail.recipients(campaign_id)[c]["status"] == "skipped" for c in skipped)
    assert mail.item(campaign_id)["state"] == "sent"
    assert len(mail.outbox(campaign_id, "CampaignSent")) == 1


# SES answers -------------------------------------------------------------------------------
class FlakySes:
    """An SESv2 client that answers the n-th SendEmail (from 1) with an error code."""

    def __init__(self, client: Any, errors: dict[int, str | Exception]) -> None:
        self._client = client
        self.errors = errors
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> Any:
        self.requests.append(request)
        error = self.errors.get(len(self.requests))
        if isinstance(error, Exception):
            raise error
        if error:
            raise ClientError(
                {"Error": {"Code": error, "Message": f"{error} for the test"}}, "SendEmail"
            )
        return self._client.send_email(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_throttling_releases_the_claim_and_the_redelivery_sends_once(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = [mail.contact() for _ in range(3)]
    campaign_id = mail.campaign(mail.segment())
    # Throttled on every attempt the sender makes in-process (3), then SQS redelivers.
    throttled = dict.fromkeys((2, 3, 4), "TooManyRequestsException")
    ses = FlakySes(mail.sender.context.sender.ses, throttled)
    monkeypatch.setattr(mail.sender.context.sender, "ses", ses)
    naps: list[float] = []
    monkeypatch.setattr(mail.sender.context.sender, "sleep", naps.append)
    mail.start(campaign_id)
    (record,) = mail.records()

    assert mail.deliver([record]) == [record["messageId"]]

    found = mail.recipients(campaign_id)
    statuses = Counter(r["status"] for r in found.values())
    assert statuses == {"sent": 1, "queued": 2}  # the throttled one released, one untouched
    assert mail.counts(campaign_id)["sent"] == 1
    assert mail.item(campaign_id)["state"] == "sending"

    assert mail.deliver([record]) == []  # SQS delivers it again after its visibility timeout

    assert_sent_once(mail, campaign_id, contacts)
    assert len(ses.requests) == 6
    assert naps == [0.5, 1.0]
    assert mail.item(campaign_id)["state"] == "sent"


def test_a_short_throttling_is_retried_in_place(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = [mail.contact() for _ in range(2)]
    campaign_id = mail.campaign(mail.segment())
    ses = FlakySes(mail.sender.context.sender.ses, {1: "ThrottlingException"})
    monkeypatch.setattr(mail.sender.context.sender, "ses", ses)
    naps: list[float] = []
    monkeypatch.setattr(mail.sender.context.sender, "sleep", naps.append)
    mail.start(campaign_id)
    (record,) = mail.records()

    assert mail.deliver([record]) == []

    assert_sent_once(mail, campaign_id, contacts)
    assert (len(ses.requests), naps) == (3, [0.5])


def test_a_repeated_claim_of_our_own_is_still_ours(mail: Mail) -> None:
    """botocore repeats an UpdateItem whose answer was lost: the repeat of a committed claim
    must not read it as another sender's (the recipient would stay `sending` for good)."""
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    sender = mail.sender.context.sender
    assert sender._claim(TENANT, campaign_id, contact_id, "claim-1")
    assert sender._claim(TENANT, campaign_id, contact_id, "claim-1")  # the repeat
    assert not sender._claim(TENANT, campaign_id, contact_id, "claim-2")  # another sender
    assert mail.recipients(campaign_id)[contact_id]["claim_id"] == "claim-1"


def test_a_repeated_mark_of_our_own_send_counts_it(mail: Mail) -> None:
    """The same for the transaction that marks the send: its repeat finds `sent_at` set by
    itself, which is ours to count (the message's summary said one fewer sent)."""
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    sender = mail.sender.context.sender
    assert sender._claim(TENANT, campaign_id, contact_id, "claim-1")
    mark = ("claim-1", "ses-message-1", "a@example.com")
    assert sender._mark_sent(TENANT, campaign_id, contact_id, *mark)
    assert sender._mark_sent(TENANT, campaign_id, contact_id, *mark)  # the repeat
    assert not sender._mark_sent(TENANT, campaign_id, contact_id, "claim-2", "ses-2", "b@x.io")
    assert mail.counts(campaign_id)["sent"] == 1
    assert mail.recipients(campaign_id)[contact_id]["message_id"] == "ses-message-1"


def test_the_ses_client_never_retries_by_itself(mail: Mail) -> None:
    config = mail.sender.context.sender.ses.meta.config
    assert config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize("code", ["SendingPausedException", "AccountSuspendedException"])
def test_an_account_that_cannot_send_keeps_the_recipients_queued(
    mail: Mail, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    mail.contact()
    campaign_id = mail.campaign(mail.segment())
    monkeypatch.setattr(
        mail.sender.context.sender, "ses", FlakySes(mail.sender.context.sender.ses, {1: code})
    )
    mail.start(campaign_id)
    (record,) = mail.records()

    assert mail.deliver([record]) == [record["messageId"]]

    assert [r["status"] for r in mail.recipients(campaign_id).values()] == ["queued"]
    assert mail.counts(campaign_id)["failed"] == 0


def test_no_connection_to_ses_keeps_the_recipient_queued_but_no_answer_fails_it(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that never reached SES is sent later; one SES may have taken (no answer)
    is never sent again."""
    unreached, unanswered = mail.contact(), mail.contact()
    campaign_id = mail.campaign(mail.segment())
    url = "https://email.us-east-1.amazonaws.com"
    ses = FlakySes(
        mail.sender.context.sender.ses,
        {1: EndpointConnectionError(endpoint_url=url), 3: ReadTimeoutError(endpoint_url=url)},
    )
    monkeypatch.setattr(mail.sender.context.sender, "ses", ses)
    mail.start(campaign_id)
    (record,) = mail.records()

    assert mail.deliver([record]) == [record["messageId"]]
    assert {r["status"] for r in mail.recipients(campaign_id).values()} == {"queued"}
    assert mail.deliver([record]) == []

    found = mail.recipients(campaign_id)
    first = json.loads(record["body"])["contact_ids"][0]  # the one SendEmail 1 and 2 were for
    other = unanswered if first == unreached else unreached
    assert found[first]["status"] == "sent"
    assert (found[other]["status"], found[other]["error"]) == ("failed", sending.NO_ANSWER)
    assert mail.deliver([record]) == []
    assert len(ses.requests) == 3
    assert mail.item(campaign_id)["state"] == "sent"


def test_a_permanent_ses_error_fails_that_recipient_only(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = [mail.contact() for _ in range(3)]
    campaign_id = mail.campaign(mail.segment())
    ses = FlakySes(mail.sender.context.sender.ses, {2: "MessageRejected"})
    monkeypatch.setattr(mail.sender.context.sender, "ses", ses)
    mail.start(campaign_id)

    assert mail.deliver_all() == []

    found = mail.recipients(campaign_id)
    (failed,) = [r for r in found.values() if r["status"] == "failed"]
    assert failed["error"] == "MessageRejected: MessageRejected for the test"
    assert failed["failed_at"]
    assert mail.counts(campaign_id)["failed"] == 1
    assert_sent_once(mail, campaign_id, [c for c in contacts if c != failed["contact_id"]])
    assert mail.item(campaign_id)["state"] == "sent"  # every recipient handled


def test_an_unverified_sender_is_refused_by_ses_and_fails_each_recipient(mail: Mail) -> None:
    """moto's SES itself refuses a From address on no verified identity (MessageRejected)."""
    contacts = [mail.contact() for _ in range(2)]
    campaign_id = mail.campaign(mail.segment(), from_address="news@unverified.example.com")
    mail.start(campaign_id)

    assert mail.deliver_all() == []

    found = mail.recipients(campaign_id)
    assert {found[c]["status"] for c in contacts} == {"failed"}
    assert found[contacts[0]]["error"].startswith("MessageRejected: ")
    assert mail.counts(campaign_id)["failed"] == 2
    assert mail.item(campaign_id)["state"] == "sent"


def test_an_operation_that_fails_for_a_contact_renders_empty_and_the_email_goes(
    mail: Mail,
) -> None:
    """A division by a contact's zero renders as a missing value: empty, or its default."""
    fine = mail.contact(attributes={"n": 4})
    zero = mail.contact(attributes={"n": 0})
    html = "<p>{{ 100 / attributes.n }}|{{ (100 / attributes.n) | default('n/a') }}</p>"
    campaign_id = mail.campaign(mail.segment(), html=html)
    mail.start(campaign_id)

    assert mail.deliver_all() == []

    assert_sent_once(mail, campaign_id, [fine, zero])
    found = mail.recipients(campaign_id)
    bodies = {
        m["To"]: m.get_body(("html",)).get_content()  # type: ignore[union-attr]
        for m in mail.emails(campaign_id)
    }
    assert bodies[found[fine]["email"]].startswith("<p>25.0|25.0</p>")
    assert bodies[found[zero]["email"]].startswith("<p>|n/a</p>")


def test_a_template_saved_before_it_was_refused_fails_each_recipient_not_the_batch(
    mail: Mail,
) -> None:
    """Saved before templates were bounded (the store does not check them; the API now
    refuses to save, schedule or send it): a width taken from a contact. Every recipient
    fails with what to fix, in little memory; the message is not failed and retried."""
    short = mail.contact(attributes={"n": 3})
    wide = mail.contact(attributes={"n": 2_000_000})
    html = '<p>{{ "%0*d" | format(attributes.n | default(1), 1) }}</p>'
    campaign_id = mail.campaign(mail.segment(), html=html)
    mail.start(campaign_id)

    assert mail.deliver_all() == []

    found = mail.recipients(campaign_id)
    for contact_id in (short, wide):
        assert found[contact_id]["status"] == "failed"
        assert "the filter 'format'" in found[contact_id]["error"]
        assert "truncate" in found[contact_id]["error"]  # the filters it may use instead
    assert mail.emails(campaign_id) == []
    assert mail.counts(campaign_id)["failed"] == 2
    assert mail.item(campaign_id)["state"] == "sent"


# Claims ------------------------------------------------------------------------------------
def _claim(mail: Mail, campaign_id: str, contact_id: str, at: datetime) -> None:
    fields = {
        **recipients.status_keys(TENANT, campaign_id, contact_id, RecipientStatus.SENDING),
        "claim_id": str(uuid.uuid4()),
        "claimed_at": format_iso(at),
    }
    mail.table.update(
        mail.table.op.update(
            keys.recipient(TENANT, campaign_id, contact_id),
            "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            None,
            {f"#f{i}": n for i, n in enumerate(fields)},
            **{f"f{i}": v for i, v in enumerate(fields.values())},
        )
    )


def test_an_old_claim_is_failed_as_interrupted_and_a_young_one_left_to_its_invocation(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, young, fresh = mail.contact(), mail.contact(), mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    now = datetime.now(UTC)
    _claim(mail, campaign_id, old, now - timedelta(minutes=10))
    _claim(mail, campaign_id, young, now - timedelta(seconds=30))
    (record,) = mail.records()

    assert mail.deliver([record]) == []

    found = mail.recipients(campaign_id)
    assert found[old]["status"] == "failed"
    assert found[old]["error"] == sending.INTERRUPTED
    assert found[young]["status"] == "sending"
    assert_sent_once(mail, campaign_id, [fresh])
    assert mail.item(campaign_id)["state"] == "sending"
    assert mail.emails(campaign_id)[0]["To"] == found[fresh]["email"]

    # That invocation died: its message comes back after the visibility timeout (720 s).
    later = time.time() + 720
    monkeypatch.setattr(mail.sender.context.sender, "clock", lambda: later)
    assert mail.deliver([record]) == []

    found = mail.recipients(campaign_id)
    assert found[young]["status"] == "failed"
    assert mail.counts(campaign_id)["failed"] == 2
    assert len(mail.emails(campaign_id)) == 1  # neither claimed one was sent again
    assert mail.item(campaign_id)["state"] == "sent"


def test_a_crash_after_the_send_never_sends_it_again(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invocation dies between SendEmail and its write: the recipient stays claimed;
    a duplicate at once leaves it to that invocation, the redelivery after the visibility
    timeout fails it as interrupted. SES has the email once."""
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    (record,) = mail.records()
    real = mail.sender.context.table.client
    monkeypatch.setattr(mail.sender.context.table, "client", Crashing(real, 0))

    assert mail.deliver([record]) == [record["messageId"]]

    monkeypatch.setattr(mail.sender.context.table, "client", real)
    assert mail.recipients(campaign_id)[contact_id]["status"] == "sending"
    assert mail.deliver([record]) == []
    assert mail.recipients(campaign_id)[contact_id]["status"] == "sending"
    later = time.time() + 720
    monkeypatch.setattr(mail.sender.context.sender, "clock", lambda: later)

    assert mail.deliver([record]) == []

    recipient = mail.recipients(campaign_id)[contact_id]
    assert (recipient["status"], recipient["error"]) == ("failed", sending.INTERRUPTED)
    assert len(mail.emails(campaign_id)) == 1
    assert mail.counts(campaign_id)["failed"] == 1
    assert mail.item(campaign_id)["state"] == "sent"


def _email_events_record(
    mail: Mail, campaign_id: str, contact_id: str, status: RecipientStatus
) -> None:
    """A write of the recipient as email_events makes one for an SES event: `<status>_at`
    once, the status moved up, the counter. (email_events refuses events of a recipient
    still `sending` and lets Lambda retry them; the sender does not rely on it.)"""
    mail.table.transact(
        recipients.mark(
            mail.table.op,
            TENANT,
            campaign_id,
            contact_id,
            status,
            condition="attribute_not_exists(#at) AND #status <> :never",
            values={"never": "-"},
            sets={f"{status.value}_at": now_iso(), "message_id": "from-ses"},
            count=status.value,
        )
    )


@pytest.mark.parametrize("first", [RecipientStatus.DELIVERED, RecipientStatus.SENT])
def test_an_ses_event_recorded_before_the_send_still_counts_sent_once(
    mail: Mail, monkeypatch: pytest.MonkeyPatch, first: RecipientStatus
) -> None:
    """A Delivery (or a Send event) recorded between SendEmail and the sender's write:
    `count_sent` is added once, by whichever write sets `sent_at`, and the status stays
    where the other writer moved it."""
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    real = mail.sender.context.table.client
    meddling = Meddling(real, lambda: _email_events_record(mail, campaign_id, contact_id, first))
    monkeypatch.setattr(mail.sender.context.table, "client", meddling)

    assert mail.deliver_all() == []

    recipient = mail.recipients(campaign_id)[contact_id]
    assert recipient["status"] == first.value  # never moved down
    assert recipient["sent_at"]
    counts = mail.counts(campaign_id)
    assert counts["sent"] == 1
    assert counts["delivered"] == (1 if first == RecipientStatus.DELIVERED else 0)
    assert len(mail.emails(campaign_id)) == 1
    assert mail.item(campaign_id)["state"] == "sent"


# Pauses, settings, time ------------------------------------------------------------------------
def test_a_paused_campaign_drops_its_messages_and_the_resume_enqueues_only_the_queued(
    mail: Mail,
) -> None:
    contacts = [mail.contact() for _ in range(3)]
    contacts += mail.many(117)
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    first, *rest = mail.records()
    assert len(rest) == 2
    assert mail.deliver([first]) == []
    first_ids = json.loads(first["body"])["contact_ids"]
    mail.pause(campaign_id)

    assert mail.deliver(rest) == []  # dropped: nothing sent, nothing to retry

    assert len(mail.emails(campaign_id)) == 50
    assert mail.counts(campaign_id)["sent"] == 50
    assert Counter(r["status"] for r in mail.recipients(campaign_id).values()) == {
        "sent": 50,
        "queued": 70,
    }

    resumed = mail.dispatch(mail.resume(campaign_id))

    assert resumed["result"] == "requeued"
    again = mail.records()
    assert set(enqueued_ids([json.loads(r["body"]) for r in again])) == (
        set(contacts) - set(first_ids)
    )
    assert mail.deliver(again) == []
    assert_sent_once(mail, campaign_id, contacts)
    assert mail.item(campaign_id)["state"] == "sent"


def test_a_cancelled_campaign_sends_nothing_more(mail: Mail) -> None:
    mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    mail.store.cancel(TENANT, campaign_id, ORIGIN)

    assert mail.deliver_all() == []

    assert mail.emails(campaign_id) == []
    assert [r["status"] for r in mail.recipients(campaign_id).values()] == ["queued"]


def test_without_email_settings_the_message_waits(mail: Mail) -> None:
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    mail.table.client.delete_item(
        TableName=mail.table.name, Key=key_attrs(keys.email_settings(TENANT))
    )
    (record,) = mail.records()

    assert mail.deliver([record]) == [record["messageId"]]
    assert mail.recipients(campaign_id)[contact_id]["status"] == "queued"

    mail.settings()
    assert mail.deliver([record]) == []
    assert_sent_once(mail, campaign_id, [contact_id])


def test_too_little_time_left_leaves_the_rest_for_the_redelivery(mail: Mail) -> None:
    contacts = [mail.contact() for _ in range(3)]
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    (record,) = mail.records()
    sent_before: list[int] = []

    def remaining(asked: int) -> int:
        sent_before.append(len(mail.emails(campaign_id)))
        return 110_000 if len(mail.emails(campaign_id)) < 1 else 15_000

    assert mail.deliver([record], Context(remaining)) == [record["messageId"]]
    statuses = Counter(r["status"] for r in mail.recipients(campaign_id).values())
    assert statuses == {"sent": 1, "queued": 2}  # nothing left claimed

    assert mail.deliver([record]) == []
    assert_sent_once(mail, campaign_id, contacts)


def test_a_message_that_is_not_a_send_batch_fails_alone(mail: Mail) -> None:
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    (good,) = mail.records()
    bad = record_of({"tenant_id": TENANT, "contact_ids": []}, mail.queue_arn)

    assert mail.deliver([bad, good]) == [bad["messageId"]]
    assert_sent_once(mail, campaign_id, [contact_id])


# Calls --------------------------------------------------------------------------------------
def test_the_calls_a_recipient_costs(mail: Mail) -> None:
    contacts = mail.many(100)
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    records = mail.records()
    sender = mail.sender.context.sender
    token_secret()  # the process's one KMS call, out of the count

    with count_calls(sender.table.client, sender.ses) as calls:
        for start in range(0, len(records), BATCH_SIZE):
            assert mail.deliver(records[start : start + BATCH_SIZE]) == []

    assert_sent_once(mail, campaign_id, contacts)
    per_recipient = calls.count / len(contacts)
    print(f"sender, 100 recipients: {dict(calls.by_operation)}; {per_recipient:.2f}/recipient")
    assert calls.by_operation["SendEmail"] == 100
    assert calls.by_operation["UpdateItem"] == 100  # the claims
    assert calls.by_operation["TransactWriteItems"] == 100 + 1  # sent, and the campaign's end
    assert per_recipient < 3.2


# The lead's modules ----------------------------------------------------------------------------
def test_mark_with_a_condition_on_the_status_only(mail: Mail) -> None:
    contact_id = mail.contact()
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    mail.table.transact(
        recipients.mark(
            mail.table.op,
            TENANT,
            campaign_id,
            contact_id,
            RecipientStatus.SKIPPED,
            condition="#status = :queued",
            values={"queued": "queued"},
            count="skipped",
        )
    )
    assert mail.recipients(campaign_id)[contact_id]["status"] == "skipped"
