"""case_mailer: an agent's public reply is emailed to the case's contact, threaded, with a
reply address that routes back to the case; a solved case mails a satisfaction link; each
email once, whatever is delivered twice or fails half-way."""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID

from crm_core import keys
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.cases import csat_tokens, reply_address
from crm_core.cases.case_mail import thread_key
from crm_core.cases.case_mailer import INTERRUPTED, SendLater
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create
from tests.support.events import outbox_events, redelivered

AGENT = User("acme", ("support",), sub="agent-a")
ADMIN = User("acme", ("admin",))


@pytest.fixture(scope="module")
def function(contacts_module: Any) -> ConsumerFunction:
    return load_consumer("case_mailer")


@pytest.fixture
def outbox(mail_setup: dict[str, str], function: ConsumerFunction) -> list[Any]:
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    sent.clear()
    # The secrets are kept per process: another module's key (moto is reset per module).
    function.context.reply_key._secret = None
    function.context.csat_key._secret = None
    return sent


def emails(sent: list[Any], case_id: str) -> list[EmailMessage]:
    parsed = [
        email.message_from_string(m.raw_data, policy=email.policy.default)
        for m in sent
        if hasattr(m, "raw_data")
    ]
    return [m for m in parsed if m["X-CRM-Case"] == case_id]  # type: ignore[misc]


def secret(label: bytes) -> bytes:
    return TokenKey(lambda: boto3.client("kms"), os.environ["CASE_MAIL_KEY_ID"], label).secret


def deliver(
    table: Table, function: ConsumerFunction, case_id: str, kind: str
) -> list[dict[str, Any]]:
    results = []
    for event in outbox_events(table, keys.case_partition("acme", case_id), kind):
        results.append(function.handler(event, LambdaContext()))
    return results


def a_case(api: Api, cases_api: Api, email_address: str | None = "ada@example.com") -> Any:
    contact = create(
        api,
        "/contacts",
        ADMIN,
        {"email": email_address} if email_address else {"phone": "+44 20 7946 0000"},
    )["id"]
    return create(cases_api, "/cases", AGENT, {"subject": "VAT number", "contact_id": contact})


def reply(cases_api: Api, case_id: str, body: str, public: bool = True) -> Any:
    return create(cases_api, f"/cases/{case_id}/replies", AGENT, {"body": body, "public": public})


def test_a_public_reply_is_mailed_once_with_a_reply_address_to_its_case(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    case = a_case(api, cases_api)
    reply(cases_api, case["id"], "Checking the ledger", public=False)
    entry = reply(cases_api, case["id"], "Your VAT number is fixed.\nBest, Sam")
    events = outbox_events(table, keys.case_partition("acme", case["id"]), "CaseReplied")
    results = [function.handler(e, LambdaContext()) for e in events]
    assert sorted(r["outcome"] for r in results) == ["sent", "skipped"]
    for event in events:
        function.handler(redelivered(event), LambdaContext())
    (message,) = emails(outbox, case["id"])
    assert message["To"] == "ada@example.com"
    assert message["From"] == "acme.support@mail.example.com"
    assert message["Subject"] == "VAT number"
    assert "Your VAT number is fixed." in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Checking the ledger" not in message.as_string()
    routed = reply_address.parse_reply_address(
        message["Reply-To"], "acme", secret(b"crm case reply address v1")
    )
    assert routed is not None
    assert routed[1] == case["id"]
    stored = table.get(keys.case_message("acme", case["id"], entry["id"]))
    assert stored is not None
    assert stored["mail_status"] == "sent"
    assert stored["mailed_to"] == "ada@example.com"
    # A reply naming the email's id threads into the case, by either id it is known by.
    for known in (stored["message_id"], message["Message-ID"]):
        found = table.get(keys.case_message_id("acme", thread_key(known)))
        assert found is not None
        assert found["case_id"] == case["id"]
    conversation = cases_api.call("GET", f"/cases/{case['id']}/conversation", AGENT).json
    shown = {e["id"]: e for e in conversation["items"]}
    assert shown[entry["id"]]["message_id"] == stored["message_id"]


def test_a_second_reply_threads_under_the_first_from_the_queues_mailbox(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    queue = create(
        cases_api,
        "/queues",
        ADMIN,
        {"name": "Billing", "members": [], "assignment": "manual", "mailbox": "billing"},
    )
    contact = create(api, "/contacts", ADMIN, {"email": "bo@example.com"})["id"]
    case = create(
        cases_api,
        "/cases",
        AGENT,
        {"subject": "Invoice", "contact_id": contact, "queue_id": queue["id"]},
    )
    first = reply(cases_api, case["id"], "One moment")
    deliver(table, function, case["id"], "CaseReplied")
    reply(cases_api, case["id"], "Done")
    for event in outbox_events(table, keys.case_partition("acme", case["id"]), "CaseReplied"):
        function.handler(event, LambdaContext())
    sent = emails(outbox, case["id"])
    (earlier,) = [m for m in sent if m["In-Reply-To"] is None]
    (later,) = [m for m in sent if m["In-Reply-To"] is not None]
    assert earlier.get_body(("plain",)).get_content().strip() == "One moment"  # type: ignore[union-attr]
    parent = table.get(keys.case_message("acme", case["id"], first["id"]))["message_id"]  # type: ignore[index]
    assert later["In-Reply-To"] == parent
    assert later["References"] == parent
    assert later["Subject"] == "Re: Invoice"
    assert later["From"].addresses[0].addr_spec == "acme.billing@mail.example.com"
    assert later["From"].addresses[0].display_name == "Billing"
    assert later["Reply-To"].startswith("acme.billing+")


def test_solving_mails_a_satisfaction_link_to_the_case_once(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    case = a_case(api, cases_api)
    changed = cases_api.call(
        "PATCH", f"/cases/{case['id']}", AGENT, {"status": "solved"}, headers={"If-Match": '"1"'}
    )
    assert changed.status == 200, changed.text
    (event,) = outbox_events(table, keys.case_partition("acme", case["id"]), "CaseSolved")
    assert function.handler(event, LambdaContext())["outcome"] == "sent"
    assert function.handler(redelivered(event), LambdaContext())["outcome"] == "sent"
    (message,) = emails(outbox, case["id"])
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = next(w for w in text.split() if w.startswith(os.environ["CSAT_URL"]))
    token = link.split("?token=", 1)[1]
    claims = csat_tokens.verify(secret(csat_tokens.LABEL), token)
    assert (claims.tenant_id, claims.case_id) == ("acme", case["id"])
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{link}"' in html


def test_who_is_not_mailed(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    nameless = a_case(api, cases_api, email_address=None)
    reply(cases_api, nameless["id"], "Hello?")
    (result,) = deliver(table, function, nameless["id"], "CaseReplied")
    assert result == {
        "outcome": "skipped",
        "reason": "the contact has no email address",
        "ses_id": None,
    }
    bounced = a_case(api, cases_api, email_address="gone@example.com")
    table.client.put_item(
        TableName=table.name,
        Item={
            **{k: {"S": v} for k, v in keys.suppression("acme", "gone@example.com").items()},
            "type": {"S": "suppression"},
            "reason": {"S": "hard_bounce"},
        },
    )
    reply(cases_api, bounced["id"], "Hello?")
    (result,) = deliver(table, function, bounced["id"], "CaseReplied")
    assert result["reason"] == "the address bounced"
    assert outbox == []


class FlakySes:
    """SES answering the given errors on the first calls, then as itself."""

    def __init__(self, client: Any, errors: list[str | Exception]) -> None:
        self.client, self.errors = client, errors

    def send_email(self, **request: Any) -> Any:
        if self.errors:
            error = self.errors.pop(0)
            if isinstance(error, Exception):
                raise error
            raise ClientError({"Error": {"Code": error, "Message": "no"}}, "SendEmail")
        return self.client.send_email(**request)


@pytest.fixture
def flaky(function: ConsumerFunction) -> Iterator[list[str | Exception]]:
    mailer = function.context.mailer
    real = mailer.ses
    errors: list[str | Exception] = []
    mailer.ses = FlakySes(real, errors)
    yield errors
    mailer.ses = real


def test_throttling_gives_the_claim_back_and_the_retry_sends_once(
    api: Api,
    cases_api: Api,
    table: Table,
    function: ConsumerFunction,
    outbox: list[Any],
    flaky: list[str | Exception],
) -> None:
    case = a_case(api, cases_api)
    reply(cases_api, case["id"], "Hi")
    (event,) = outbox_events(table, keys.case_partition("acme", case["id"]), "CaseReplied")
    flaky.append("TooManyRequestsException")
    with pytest.raises(SendLater):
        function.handler(event, LambdaContext())
    assert emails(outbox, case["id"]) == []
    assert function.handler(event, LambdaContext())["outcome"] == "sent"
    assert len(emails(outbox, case["id"])) == 1


def test_a_rejected_email_is_recorded_on_its_entry_and_not_retried(
    api: Api,
    cases_api: Api,
    table: Table,
    function: ConsumerFunction,
    outbox: list[Any],
    flaky: list[str | Exception],
) -> None:
    case = a_case(api, cases_api)
    entry = reply(cases_api, case["id"], "Hi")
    flaky.append("MessageRejected")
    (result,) = deliver(table, function, case["id"], "CaseReplied")
    assert result["outcome"] == "failed"
    stored = table.get(keys.case_message("acme", case["id"], entry["id"]))
    assert stored is not None
    assert stored["mail_status"] == "failed"
    assert stored["mail_error"].startswith("MessageRejected")


def test_a_claim_left_by_an_interrupted_run_is_never_sent_again(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    case = a_case(api, cases_api)
    entry = reply(cases_api, case["id"], "Hi")
    table.client.put_item(
        TableName=table.name,
        Item={
            **{
                k: {"S": v}
                for k, v in keys.case_mail("acme", case["id"], f"reply#{entry['id']}").items()
            },
            "status": {"S": "claimed"},
            "claim_id": {"S": "an-earlier-run"},
        },
    )
    (result,) = deliver(table, function, case["id"], "CaseReplied")
    assert result["outcome"] == "duplicate"
    assert emails(outbox, case["id"]) == []
    mail = table.get(keys.case_mail("acme", case["id"], f"reply#{entry['id']}"))
    assert mail is not None
    assert (mail["status"], mail["reason"]) == ("failed", INTERRUPTED)
    stored = table.get(keys.case_message("acme", case["id"], entry["id"]))
    assert stored is not None
    assert stored["mail_status"] == "failed"


def test_a_case_reopened_before_its_solved_notice_went_gets_none(
    api: Api, cases_api: Api, table: Table, function: ConsumerFunction, outbox: list[Any]
) -> None:
    case = a_case(api, cases_api)
    path = f"/cases/{case['id']}"
    solved = cases_api.call("PATCH", path, AGENT, {"status": "solved"}, headers={"If-Match": '"1"'})
    assert solved.status == 200, solved.text
    reopened = cases_api.call("PATCH", path, AGENT, {"status": "open"}, headers={"If-Match": '"2"'})
    assert reopened.status == 200, reopened.text
    (event,) = outbox_events(table, keys.case_partition("acme", case["id"]), "CaseSolved")
    result = function.handler(event, LambdaContext())
    assert (result["outcome"], result["reason"]) == ("skipped", "the case was reopened")
    assert emails(outbox, case["id"]) == []
