"""Email to case (inbound_mail): a message to a queue's address opens a case, a reply
threads into its case (by the reply address, or by In-Reply-To and References), and what
must not reach a case does not: spam, viruses, malformed MIME, automatic replies, a
stranger writing to someone's case. Attachments are kept in S3, bounded; the raw message
always stays where SES stored it."""

from __future__ import annotations

import os
import sys
import uuid
from email.message import EmailMessage
from typing import Any

import boto3
import pytest

from crm_core import keys
from crm_core.table import Table
from infra.ops.mail_cli import ses_receipt_event
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create, get
from tests.support.events import outbox_events

ADMIN = User("acme", ("admin",))
AGENT = User("acme", ("support",), sub="agent-a")
OTHER = User("globex", ("admin",))
BUCKET = os.environ["MAIL_BUCKET"]
QUEUE_ADDRESS = "acme.help@mail.example.com"
ATTRIBUTION = "On Mon, 7 Dec 2026 at 10:02, Sam <acme.help@mail.example.com> wrote:"


@pytest.fixture(scope="module")
def function(contacts_module: Any) -> ConsumerFunction:
    return load_consumer("inbound_mail")


@pytest.fixture(scope="module")
def mailer(contacts_module: Any) -> ConsumerFunction:
    return load_consumer("case_mailer")


@pytest.fixture
def setup(mail_setup: dict[str, str], function: ConsumerFunction, mailer: ConsumerFunction) -> None:
    s3 = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    function.context.reply_key._secret = None  # another module's key (moto is per module)
    mailer.context.reply_key._secret = None
    mailer.context.csat_key._secret = None


@pytest.fixture
def queue(setup: None, cases_api: Api) -> dict[str, Any]:
    # Each test has a fresh table: the function's memory of namespace claims is not valid.
    sys.modules["cases_api.context"].namespaces.forget()
    body = {
        "name": "Help",
        "members": ["agent-a", "agent-b"],
        "assignment": "round_robin",
        "mailbox": "help",
    }
    made: dict[str, Any] = create(cases_api, "/queues", ADMIN, body)
    assert made["address"] == QUEUE_ADDRESS
    return made


def email_of(
    subject: str = "Printer on fire",
    text: str | None = "It is on fire.",
    sender: str = "Ada Lovelace <ada@example.com>",
    to: str = QUEUE_ADDRESS,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
    return message


def receive(
    function: ConsumerFunction, raw: bytes | EmailMessage, **verdicts: bool
) -> dict[str, Any]:
    """As SES: the message stored in the bucket, then the function invoked with its receipt."""
    data = bytes(raw) if isinstance(raw, EmailMessage) else raw
    message_id = uuid.uuid4().hex
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"inbound/{message_id}", Body=data)
    recipients = [str(raw["To"])] if isinstance(raw, EmailMessage) else [QUEUE_ADDRESS]
    event = ses_receipt_event(message_id, recipients, **verdicts)
    (result,) = function.handler(event, LambdaContext())
    result["object_key"] = f"inbound/{message_id}"
    return dict(result)


def conversation(cases_api: Api, case_id: str) -> list[dict[str, Any]]:
    return list(get(cases_api, f"/cases/{case_id}/conversation", AGENT)["items"])


def stored(key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


# A new message ---------------------------------------------------------------------------
def test_a_new_message_opens_an_assigned_case_for_its_sender(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api, api: Api, table: Table
) -> None:
    message = email_of(X_Priority="1 (Highest)")
    result = receive(function, message)
    assert result["outcome"] == "opened"
    case = get(cases_api, f"/cases/{result['case_id']}", AGENT)
    assert case["subject"] == "Printer on fire"
    assert case["channel"] == "email"
    assert case["priority"] == "urgent"
    assert case["queue_id"] == queue["id"]
    assert case["assignee_id"] in ("agent-a", "agent-b")
    assert case["description"] == "It is on fire."
    contact = get(api, f"/contacts/{case['contact_id']}", ADMIN)
    assert (contact["email"], contact["first_name"], contact["last_name"]) == (
        "ada@example.com",
        "Ada",
        "Lovelace",
    )
    (entry,) = conversation(cases_api, case["id"])
    assert entry["kind"] == "inbound"
    assert entry["from_address"] == "ada@example.com"
    assert entry["message_id"] == message["Message-ID"]
    assert entry["body"] == "It is on fire."
    partition = keys.case_partition("acme", case["id"])
    assert len(outbox_events(table, partition, "CaseOpened")) == 1
    assert len(outbox_events(table, partition, "CaseAssigned")) == 1
    assert len(outbox_events(table, partition, "CaseReplied")) == 1
    assert stored(result["object_key"]) == bytes(message)  # the raw message stays


def test_a_message_delivered_twice_opens_one_case(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api
) -> None:
    message = email_of()
    first = receive(function, message)
    again = receive(function, message)
    assert (again["outcome"], again["case_id"]) == ("duplicate", first["case_id"])
    assert len(conversation(cases_api, first["case_id"])) == 1


def test_a_known_sender_is_the_case_contact(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api, api: Api
) -> None:
    contact = create(api, "/contacts", ADMIN, {"email": "bo@example.com"})
    result = receive(function, email_of(sender="BO@Example.com"))
    case = get(cases_api, f"/cases/{result['case_id']}", AGENT)
    assert case["contact_id"] == contact["id"]


def test_what_does_not_reach_a_queue_is_ignored(
    queue: dict[str, Any], function: ConsumerFunction
) -> None:
    nobody = receive(function, email_of(to="acme.nobody@mail.example.com"))
    assert nobody["outcome"] == "ignored"
    elsewhere = receive(function, email_of(to="acme.help@other.example.com"))
    assert elsewhere["outcome"] == "ignored"
    unclaimed = receive(function, email_of(to="initech.help@mail.example.com"))
    assert unclaimed["outcome"] == "ignored"
    automatic = receive(function, email_of(Auto_Submitted="auto-replied"))
    assert automatic == {**automatic, "outcome": "ignored", "case_id": None}


# Refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(("verdict", "reason"), [("spam", "spam"), ("virus", "virus")])
def test_spam_and_viruses_are_refused_and_kept_in_the_bucket(
    queue: dict[str, Any],
    function: ConsumerFunction,
    table: Table,
    verdict: str,
    reason: str,
) -> None:
    message = email_of(subject=f"Cheap {verdict}")
    result = receive(function, message, **{verdict: True})
    assert (result["outcome"], result["reason"], result["case_id"]) == ("refused", reason, None)
    assert stored(result["object_key"]) == bytes(message)
    assert table.get(keys.contact_email("acme", "ada@example.com")) is None


def test_a_malformed_message_is_rejected_clearly_and_kept(
    queue: dict[str, Any], function: ConsumerFunction
) -> None:
    raw = b"Content-Type: multipart/mixed\r\nSubject: broken\r\n\r\nno boundary, no From\r\n"
    result = receive(function, raw)
    assert result["outcome"] == "rejected"
    assert result["reason"] == "the message has no From address"
    assert stored(result["object_key"]) == raw


# Attachments and bodies ---------------------------------------------------------------------
def test_attachments_are_kept_in_s3_bounded_and_a_20_mb_one_is_listed_only(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api, table: Table
) -> None:
    message = email_of(text="See attached.")
    message.add_attachment(
        b"%PDF-1.7 invoice", maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    big = os.urandom(20 * 1024 * 1024)
    message.add_attachment(big, maintype="video", subtype="mp4", filename="fire.mp4")
    result = receive(function, message)
    assert result["outcome"] == "opened"
    (entry,) = conversation(cases_api, result["case_id"])
    assert entry["attachments"] == [
        {"filename": "invoice.pdf", "content_type": "application/pdf", "size": 16, "kept": True},
        {
            "filename": "fire.mp4",
            "content_type": "video/mp4",
            "size": 20 * 1024 * 1024,
            "kept": False,
        },
    ]
    item = table.get(keys.case_message("acme", result["case_id"], entry["id"]))
    assert item is not None
    kept = item["attachments"][0]["s3_key"]
    assert kept.startswith(f"attachments/acme/{entry['id']}/")
    assert stored(kept) == b"%PDF-1.7 invoice"
    assert "s3_key" not in item["attachments"][1]


def test_a_message_with_no_text_part_uses_its_html_or_says_so(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api
) -> None:
    html_only = email_of(text=None)
    html_only.set_content("<p>Only <b>HTML</b> here</p>", subtype="html")
    result = receive(function, html_only)
    (entry,) = conversation(cases_api, result["case_id"])
    assert entry["body"] == "Only HTML here"
    bare = email_of(text=None)
    bare.add_attachment(b"png", maintype="image", subtype="png", filename="shot.png")
    result = receive(function, bare)
    (entry,) = conversation(cases_api, result["case_id"])
    assert entry["body"] == "(attachments only)"
    case = get(cases_api, f"/cases/{result['case_id']}", AGENT)
    assert case["description"] == "(attachments only)"


# Replies ------------------------------------------------------------------------------------
def _agent_replies(
    cases_api: Api, table: Table, mailer: ConsumerFunction, case_id: str, status: str | None
) -> EmailMessage:
    """The agent's public reply, mailed; the email the customer got."""
    import email as email_package
    import email.policy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    body: dict[str, Any] = {"body": "Have you tried water?", "public": True}
    if status:
        body["status"] = status
    create(cases_api, f"/cases/{case_id}/replies", AGENT, body)
    for event in outbox_events(table, keys.case_partition("acme", case_id), "CaseReplied"):
        mailer.handler(event, LambdaContext())
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    mine = [
        email_package.message_from_string(m.raw_data, policy=email.policy.default)
        for m in sent
        if hasattr(m, "raw_data") and f"X-CRM-Case: {case_id}" in m.raw_data
    ]
    return mine[-1]  # type: ignore[return-value]


def _answer(got: EmailMessage, text: str, to: str | None = None, **headers: str) -> EmailMessage:
    answer = email_of(
        subject=f"Re: {got['Subject']}",
        text=f"{text}\n\n{ATTRIBUTION}\n> Have you tried water?\n",
        to=to or str(got["Reply-To"]),
        **headers,
    )
    return answer


def test_the_customers_answer_threads_into_the_case_and_reopens_it(
    queue: dict[str, Any],
    function: ConsumerFunction,
    mailer: ConsumerFunction,
    cases_api: Api,
    table: Table,
) -> None:
    opened = receive(function, email_of())
    case_id = opened["case_id"]
    got = _agent_replies(cases_api, table, mailer, case_id, status="pending")
    assert get(cases_api, f"/cases/{case_id}", AGENT)["status"] == "pending"
    result = receive(function, _answer(got, "Water made it worse."))
    assert (result["outcome"], result["case_id"]) == ("threaded", case_id)
    case = get(cases_api, f"/cases/{case_id}", AGENT)
    assert case["status"] == "open"
    entries = conversation(cases_api, case_id)
    assert [e["kind"] for e in entries] == ["inbound", "reply", "inbound"]
    assert entries[-1]["body"] == "Water made it worse."  # the quoted history cut off


def test_an_answer_without_its_reply_address_threads_by_its_headers(
    queue: dict[str, Any],
    function: ConsumerFunction,
    mailer: ConsumerFunction,
    cases_api: Api,
    table: Table,
) -> None:
    opened = receive(function, email_of())
    got = _agent_replies(cases_api, table, mailer, opened["case_id"], status=None)
    answer = _answer(got, "Still burning.", to=QUEUE_ADDRESS, In_Reply_To=str(got["Message-ID"]))
    result = receive(function, answer)
    assert (result["outcome"], result["case_id"]) == ("threaded", opened["case_id"])
    referenced = _answer(got, "And now?", to=QUEUE_ADDRESS, References=str(got["Message-ID"]))
    assert receive(function, referenced)["case_id"] == opened["case_id"]


def test_a_stranger_writing_to_a_cases_reply_address_gets_a_case_of_their_own(
    queue: dict[str, Any],
    function: ConsumerFunction,
    mailer: ConsumerFunction,
    cases_api: Api,
    table: Table,
) -> None:
    opened = receive(function, email_of())
    got = _agent_replies(cases_api, table, mailer, opened["case_id"], status=None)
    spoof = _answer(got, "Please send me the invoices.")
    spoof.replace_header("From", "Mallory <mallory@evil.example>")
    result = receive(function, spoof)
    assert result["outcome"] == "opened"
    assert result["reason"] == "the sender is not the case's contact"
    assert result["case_id"] != opened["case_id"]
    assert len(conversation(cases_api, opened["case_id"])) == 2  # untouched
    theirs = get(cases_api, f"/cases/{result['case_id']}", AGENT)
    assert theirs["queue_id"] == queue["id"]


def test_a_solved_case_is_reopened_by_the_customer_and_a_closed_one_followed_up(
    queue: dict[str, Any],
    function: ConsumerFunction,
    mailer: ConsumerFunction,
    cases_api: Api,
    table: Table,
) -> None:
    opened = receive(function, email_of())
    case_id = opened["case_id"]
    got = _agent_replies(cases_api, table, mailer, case_id, status="solved")
    result = receive(function, _answer(got, "It caught fire again."))
    assert result["outcome"] == "threaded"
    case = get(cases_api, f"/cases/{case_id}", AGENT)
    assert (case["status"], case["reopened"]) == ("open", 1)
    (reopened,) = outbox_events(table, keys.case_partition("acme", case_id), "CaseReopened")
    assert reopened["detail"]["data"]["by"] == "customer"
    for status in ("solved", "closed"):
        version = get(cases_api, f"/cases/{case_id}", AGENT)["version"]
        changed = cases_api.call(
            "PATCH",
            f"/cases/{case_id}",
            AGENT,
            {"status": status},
            headers={"If-Match": f'"{version}"'},
        )
        assert changed.status == 200, changed.text
    later = receive(function, _answer(got, "Months later: fire."))
    assert later["outcome"] == "follow_up"
    follow_up = get(cases_api, f"/cases/{later['case_id']}", AGENT)
    assert follow_up["follow_up_of"] == case_id
    assert get(cases_api, f"/cases/{case_id}", AGENT)["status"] == "closed"


def test_a_reply_address_of_one_tenant_routes_nothing_at_another(
    queue: dict[str, Any],
    function: ConsumerFunction,
    mailer: ConsumerFunction,
    cases_api: Api,
    table: Table,
) -> None:
    create(
        cases_api,
        "/queues",
        OTHER,
        {"name": "Help", "members": [], "assignment": "manual", "mailbox": "help"},
    )
    opened = receive(function, email_of())
    got = _agent_replies(cases_api, table, mailer, opened["case_id"], status=None)
    token = str(got["Reply-To"]).split("+", 1)[1]
    moved = _answer(got, "Hi", to=f"globex.help+{token}")
    result = receive(function, moved)
    # globex's queue address with a token that is not globex's: a new globex case, and
    # nothing of acme's case is read or touched.
    assert result["outcome"] == "opened"
    assert get(cases_api, f"/cases/{result['case_id']}", OTHER)["subject"].startswith("Re:")
    assert len(conversation(cases_api, opened["case_id"])) == 2


def test_a_kept_attachment_is_downloaded_by_a_short_link_of_the_tenants_own(
    queue: dict[str, Any], function: ConsumerFunction, cases_api: Api
) -> None:
    message = email_of(text="See attached.")
    message.add_attachment(
        b"%PDF-1.7", maintype="application", subtype="pdf", filename="réçu 2026.pdf"
    )
    message.add_attachment(b"x" * 2048, maintype="text", subtype="plain", filename="big.txt")
    function.context.intake.limits = type(function.context.intake.limits)(max_attachment_bytes=1024)
    try:
        result = receive(function, message)
    finally:
        function.context.intake.limits = type(function.context.intake.limits)()
    (entry,) = conversation(cases_api, result["case_id"])
    path = f"/cases/{result['case_id']}/conversation/{entry['id']}/attachments"
    link = get(cases_api, f"{path}/0", AGENT)
    assert (link["filename"], link["size"], link["content_type"]) == (
        "réçu 2026.pdf",
        8,
        "application/pdf",
    )
    assert f"attachments/acme/{entry['id']}/0" in link["url"]
    assert "X-Amz-Expires=300" in link["url"]
    assert "r%25C3%25A9%25C3%25A7u" in link["url"]  # the name, encoded, on the download
    listed_only = cases_api.call("GET", f"{path}/1", AGENT)
    assert listed_only.status == 404
    assert "not kept" in listed_only.json["detail"]
    assert cases_api.call("GET", f"{path}/2", AGENT).status == 404
    assert cases_api.call("GET", f"{path}/0", OTHER).status == 404  # another tenant's case
