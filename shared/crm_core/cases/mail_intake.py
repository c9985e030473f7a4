"""Email to case: a message SES received (stored raw in S3) opens a case in the queue it was
sent to, or joins the conversation of the case it answers.

    refused   SES's verdict: spam, a virus, or a From that DMARC says is forged
    rejected  not a message we can act on (malformed MIME, no From): nothing is written
    ignored   an automatic message (out-of-office, bounce: RFC 3834), or no queue or case
              of any tenant at the addresses it was sent to
    duplicate delivered before (SES and Lambda deliver at least once): its Message-ID is
              recorded with the case, in the case's own transaction
    threaded  the case's contact answered: the entry joins the case (and reopens it)
    follow_up the case it answers is closed: a new case, `follow_up_of` the closed one
    opened    a new case in the queue (also when someone other than the case's contact
              writes to a case's reply address: a reply is only ever the contact's)
In every outcome the raw message stays in S3 (the bucket's lifecycle decides how long), so
nothing a customer sent is lost to a refusal or a bug.

Routing. The addresses are `<namespace>.<mailbox>[+<token>]@<mail domain>`: the namespace
names the tenant (campaigns/sender_namespace.py, the claim item says whose), the mailbox
the queue (`keys.queue_mailbox`), the token the case (reply_address.py, MAC'd with the
tenant). A message whose reply token was lost still threads by `In-Reply-To` and
`References`, through the message-id items of the emails the case sent and received.

The sender. The case's contact is whoever owns the From address (`ContactStore.owner_of`:
its own or a merged contact's address). A new case's sender becomes a contact when no
contact has the address.

Attachments are stored under `attachments/<tenant>/<entry id>/<n>` with their names and
sizes on the entry; those over the size limit, or past the count limit, are listed and
not kept (inbound_mail.parse's limits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from pydantic import ValidationError

from crm_core import keys
from crm_core.cases import reply_address
from crm_core.cases.case_mail import thread_key
from crm_core.cases.case_store import CaseClosed, CaseStore, DuplicateMessage
from crm_core.cases.inbound_mail import (
    InboundMessage,
    MalformedMessage,
    new_text_of_reply,
    parse,
    receipt_refusal,
)
from crm_core.contacts.store import ContactStore
from crm_core.errors import Conflict, NotFound, Unprocessable
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid
from crm_core.records.case import MAX_DESCRIPTION_CHARS, CaseCreate
from crm_core.records.contact import ContactCreate

Outcome = Literal["refused", "rejected", "ignored", "duplicate", "threaded", "follow_up", "opened"]
ATTACHMENT_PREFIX = "attachments/"
NO_SUBJECT = "(no subject)"
MAX_SUBJECT_CHARS = 250  # records.case.Subject
MAX_BODY_CHARS = 100_000  # records.case: what a conversation entry holds
MAX_ROUTED_ADDRESSES = 10  # of the recipients, the first that route are tried
ORIGIN_NAME = "inbound_mail"


@dataclass(frozen=True)
class IntakeResult:
    outcome: Outcome
    reason: str | None = None
    tenant_id: str | None = None
    case_id: str | None = None
    entry_id: str | None = None


@dataclass(frozen=True)
class Route:
    tenant_id: str
    mailbox: str | None  # the queue's, read only when needed (`MailIntake._queue_of`)
    case_id: str | None  # a reply address's


@dataclass(frozen=True)
class IntakeLimits:
    max_attachments: int = 20
    max_attachment_bytes: int = 10 * 1024 * 1024


class MailIntake:
    def __init__(
        self,
        cases: CaseStore,
        contacts: ContactStore,
        s3: Any,
        bucket: str,
        mail_domain: str,
        reply_secret: Callable[[], bytes],
        limits: IntakeLimits = IntakeLimits(),
    ) -> None:
        self.cases = cases
        self.table = cases.table
        self.contacts = contacts
        self.s3 = s3
        self.bucket = bucket
        self.mail_domain = mail_domain.lower()
        self.reply_secret = reply_secret
        self.limits = limits
        self._mailboxes: dict[str, str | None] = {}  # per message: mailbox -> queue

    def receive(
        self, object_key: str, receipt: Mapping[str, Any], correlation_id: str | None = None
    ) -> IntakeResult:
        """The message stored at `object_key`, with SES's `receipt` (verdicts, recipients)."""
        refusal = receipt_refusal(receipt)
        if refusal is not None:
            return IntakeResult("refused", refusal)
        raw = self.s3.get_object(Bucket=self.bucket, Key=object_key)["Body"].read()
        try:
            message = parse(
                raw,
                max_attachments=self.limits.max_attachments,
                max_attachment_bytes=self.limits.max_attachment_bytes,
                max_text_chars=MAX_BODY_CHARS,
            )
        except MalformedMessage as malformed:
            return IntakeResult("rejected", str(malformed))
        if message.auto_submitted:
            return IntakeResult("ignored", "an automatic message (auto-reply, bounce, list)")
        recipients = _recipients(receipt, message)
        self._mailboxes = {}
        route = self._route(recipients)
        if route is None:
            return IntakeResult("ignored", "no queue or case receives mail at its addresses")
        origin = Origin.system(ORIGIN_NAME, correlation_id)
        # An email without a Message-ID is known by where SES stored it (one object each).
        known_as = message.message_id or f"<{object_key.replace('/', '.')}@inbound.invalid>"
        try:
            return self._deliver(route, message, known_as, origin)
        except DuplicateMessage as duplicate:
            return IntakeResult("duplicate", None, route.tenant_id, duplicate.case_id)

    # Routing ------------------------------------------------------------------------------
    def _route(self, recipients: Sequence[str]) -> Route | None:
        for address in recipients[:MAX_ROUTED_ADDRESSES]:
            route = self._route_one(address)
            if route is not None:
                return route
        return None

    def _route_one(self, address: str) -> Route | None:
        local, at, domain = address.strip().lower().rpartition("@")
        if not at or domain != self.mail_domain:
            return None
        base, plus, _ = local.partition("+")
        name, dot, mailbox = base.partition(".")
        if not name:
            return None
        claim = self.table.get(keys.sender_namespace(name), consistent=False)
        if claim is None:
            return None
        tenant_id = str(claim["tenant_id"])
        case_id = None
        if plus:
            routed = reply_address.parse_reply_address(address, tenant_id, self.reply_secret())
            case_id = routed[1] if routed else None
        route = Route(tenant_id, mailbox if dot and mailbox else None, case_id)
        if case_id is None and self._queue_of(route) is None:
            return None
        return route

    def _queue_of(self, route: Route) -> str | None:
        """The queue whose mailbox the message was sent to (read once per message)."""
        if route.mailbox is None:
            return None
        if route.mailbox not in self._mailboxes:
            held = self.table.get(
                keys.queue_mailbox(route.tenant_id, route.mailbox), consistent=False
            )
            self._mailboxes[route.mailbox] = str(held["queue_id"]) if held else None
        return self._mailboxes[route.mailbox]

    def _threaded_case(self, tenant_id: str, message: InboundMessage) -> str | None:
        """The case the message answers by its threading headers: In-Reply-To first, then
        References from the most recent."""
        named = [m for m in (message.in_reply_to, *reversed(message.references)) if m]
        named = list(dict.fromkeys(named))[:100]
        if not named:
            return None
        found = self.table.batch_get(
            [keys.case_message_id(tenant_id, thread_key(m)) for m in named]
        )
        by_id = {item["PK"]: str(item["case_id"]) for item in found}
        for message_id in named:
            case_id = by_id.get(keys.case_message_id(tenant_id, thread_key(message_id))["PK"])
            if case_id:
                return case_id
        return None

    # Delivery ----------------------------------------------------------------------------
    def _deliver(
        self, route: Route, message: InboundMessage, known_as: str, origin: Origin
    ) -> IntakeResult:
        tenant_id = route.tenant_id
        case_id = route.case_id or self._threaded_case(tenant_id, message)
        case = self._case(tenant_id, case_id) if case_id else None
        sender: Mapping[str, Any] | None = self.contacts.owner_of(tenant_id, message.from_address)
        entry_id = new_ulid()
        if case is not None and sender is not None and case.get("contact_id") == sender["id"]:
            entry = self._entry(tenant_id, entry_id, message, new_text_of_reply(message.text))
            try:
                self.cases.customer_wrote(tenant_id, case["id"], entry, origin, known_as)
            except CaseClosed:
                queue_id = case.get("queue_id") or self._queue_of(route)
                opened = self._open(
                    tenant_id, queue_id, message, sender, entry, known_as, origin, case["id"]
                )
                return IntakeResult("follow_up", None, tenant_id, opened, entry_id)
            return IntakeResult("threaded", None, tenant_id, case["id"], entry_id)
        reason = None
        if case is not None:
            # Someone else wrote to the case's address: their own case, in its queue.
            reason = "the sender is not the case's contact"
            queue_id = case.get("queue_id") or self._queue_of(route)
        else:
            queue_id = self._queue_of(route)
            if queue_id is None:
                return IntakeResult("ignored", "the case it answers is gone", tenant_id)
        if sender is None:
            sender = self._new_contact(tenant_id, message, origin)
        entry = self._entry(tenant_id, entry_id, message, message.text)
        opened = self._open(tenant_id, queue_id, message, sender, entry, known_as, origin, None)
        return IntakeResult("opened", reason, tenant_id, opened, entry_id)

    def _case(self, tenant_id: str, case_id: str) -> dict[str, Any] | None:
        try:
            return self.cases.load(tenant_id, case_id)
        except NotFound:
            return None

    def _open(
        self,
        tenant_id: str,
        queue_id: str | None,
        message: InboundMessage,
        sender: Mapping[str, Any],
        entry: Mapping[str, Any],
        known_as: str,
        origin: Origin,
        follow_up_of: str | None,
    ) -> str:
        subject = (message.subject or NO_SUBJECT)[:MAX_SUBJECT_CHARS].strip() or NO_SUBJECT
        body = CaseCreate(
            subject=subject,
            description=entry["body"][:MAX_DESCRIPTION_CHARS].strip() or None,
            contact_id=sender.get("id"),
            company_id=sender.get("company_id"),
            priority=message.priority,
            channel="email",
            queue_id=queue_id,
        )
        try:
            case = self.cases.create(
                tenant_id,
                body,
                origin,
                follow_up_of=follow_up_of,
                first_entry=entry,
                inbound_message_id=known_as,
            )
        except Unprocessable:
            if queue_id is None:
                raise
            # The queue was deleted since its mailbox was read: the case opens without it.
            unqueued = body.model_copy(update={"queue_id": None})
            case = self.cases.create(
                tenant_id,
                unqueued,
                origin,
                follow_up_of=follow_up_of,
                first_entry=entry,
                inbound_message_id=known_as,
            )
        return case.id

    def _new_contact(
        self, tenant_id: str, message: InboundMessage, origin: Origin
    ) -> Mapping[str, Any]:
        """A contact for the sender; none (`{}`: the case has no contact, the entry keeps
        the address) when the address is not one a contact may have."""
        first, _, last = (message.from_name or "").strip().partition(" ")
        named = {"first_name": first[:100], "last_name": last.strip()[:100]}
        tries = [
            {"email": message.from_address, **{k: v for k, v in named.items() if v}},
            {"email": message.from_address},  # a name the contact cannot hold: not needed
        ]
        data = None
        for fields in tries:
            try:
                data = ContactCreate.model_validate(fields)
                break
            except ValidationError:
                continue
        if data is None:
            return {}
        try:
            contact = self.contacts.create(tenant_id, data, origin)
        except Conflict:  # created meanwhile (another email of theirs, say)
            found = self.contacts.owner_of(tenant_id, message.from_address)
            if found is None:
                raise
            return found
        return {"id": contact.id, "company_id": contact.company_id}

    def _entry(
        self, tenant_id: str, entry_id: str, message: InboundMessage, text: str
    ) -> dict[str, Any]:
        """The conversation entry of the message, its attachments stored first (an entry
        never names an object that is not there)."""
        attachments = []
        for index, attachment in enumerate(message.attachments):
            listed: dict[str, Any] = {
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "kept": attachment.content is not None,
            }
            if attachment.content is not None:
                key = f"{ATTACHMENT_PREFIX}{tenant_id}/{entry_id}/{index}"
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=attachment.content,
                    ContentType=attachment.content_type,
                    ContentDisposition=_disposition(attachment.filename),
                )
                listed["s3_key"] = key
            attachments.append(listed)
        body = text.strip() or ("(no text)" if not attachments else "(attachments only)")
        return {
            "id": entry_id,
            "kind": "inbound",
            "public": True,
            "body": body,
            "from_address": message.from_address,
            "from_name": message.from_name,
            "message_id": message.message_id,
            "subject": message.subject,
            "attachments": attachments,
            "attachments_dropped": message.attachments_dropped,
            "text_truncated": message.text_truncated,
        }


def _recipients(receipt: Mapping[str, Any], message: InboundMessage) -> list[str]:
    """Whom SES received the message for (the envelope, which Bcc'd queues are in), else
    the To and Cc headers (a message delivered by `crm mail receive`)."""
    listed = receipt.get("recipients")
    if isinstance(listed, list) and listed:
        return [str(r) for r in listed if isinstance(r, str)]
    return [*message.to, *message.cc]


def _disposition(filename: str) -> str:
    """RFC 6266's form for any file name (UTF-8, percent-encoded)."""
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
