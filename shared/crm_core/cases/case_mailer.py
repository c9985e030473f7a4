"""A case's outbound email: an agent's public reply, and the notice that the case is solved
(with its satisfaction link), sent to the case's contact through SES, threaded.

Each email is one `case_mail` item in the case's partition (`keys.case_mail`, keyed by what
it mails: `reply#<entry id>`, `solved#<event id>`), moved claimed -> sent | failed:
- claimed (a conditional Put) before SES is called, so a second delivery of the event, or a
  retry after a crash, never mails the customer twice: a claim found is never sent again
  (after a crash between SES's answer and the mark, the email may have gone: it is marked
  failed with that reason rather than risk a second one);
- sent, in one transaction with the conversation entry's `message_id` (the id SES gave the
  email, which the customer's reply names in In-Reply-To) and the message-id items
  (`keys.case_message_id`, by `case_mail.thread_key`) that thread a reply that lost its
  reply address.

From: the case's queue mailbox, `<namespace>.<mailbox>@<mail domain>` (the namespace is the
tenant's, as for campaign senders: campaigns/sender_namespace.py), or
`<namespace>.support@` when the case has no queue or its queue no mailbox. Reply-To: the
case's reply address (reply_address.py), which routes the answer back to this case, when
its local part fits; else the From address (the headers thread it).

An address SES reported as hard-bouncing (the tenant's suppression list) is not mailed: a
support reply is not marketing, so an unsubscribe does not stop it, but a bounce would.
"""

from __future__ import annotations

import contextlib
import html
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from crm_core import keys
from crm_core.campaigns.sender_namespace import namespace
from crm_core.cases import csat_tokens, reply_address
from crm_core.cases.case_mail import build_case_email, message_id, thread_key
from crm_core.cases.case_store import MESSAGE_ID_ITEM
from crm_core.clock import now_iso
from crm_core.contacts.suppression import suppression_key
from crm_core.pagination import ListQuery
from crm_core.table import Filter, Table, TransactionCancelled

MAIL_ITEM = "case_mail"
DEFAULT_MAILBOX = "support"
# SES errors that are the message's own (sending again cannot help).
PERMANENT_SES_ERRORS = frozenset(
    {"MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"}
)
NO_ANSWER = "SES did not answer in time; not resent so that it is never sent twice"
INTERRUPTED = "an earlier attempt was interrupted after its claim; not resent"
# The conversation's ids a reply names in References: the first and the most recent.
_RECENT_PARENTS = 19
_HAS_MESSAGE_ID = Filter("attribute_exists(message_id)", {}, {}, read_limit=100)

Outcome = Literal["sent", "failed", "skipped", "duplicate"]


class SendLater(RuntimeError):
    """SES refused for now (throttling, its own trouble): the event is retried."""


@dataclass(frozen=True)
class MailResult:
    outcome: Outcome
    reason: str | None = None
    ses_message_id: str | None = None


@dataclass(frozen=True)
class MailSettings:
    mail_domain: str
    csat_base_url: str
    region: str


class CaseMailer:
    def __init__(
        self,
        table: Table,
        ses: Any,
        reply_secret: Callable[[], bytes],
        csat_secret: Callable[[], bytes],
        settings: MailSettings,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self.table = table
        self.op = table.op
        self.ses = ses
        self.reply_secret = reply_secret
        self.csat_secret = csat_secret
        self.settings = settings
        self.clock = clock

    # The two emails ---------------------------------------------------------------------
    def mail_reply(self, tenant_id: str, case_id: str, entry_id: str) -> MailResult:
        """The agent's public reply `entry_id`, as the customer reads it."""
        entry = self.table.get(keys.case_message(tenant_id, case_id, entry_id))
        if entry is None or entry.get("kind") != "reply" or not entry.get("public"):
            return MailResult("skipped", "not a public reply")
        case = self.table.get(keys.case(tenant_id, case_id), consistent=False)
        if case is None:
            return MailResult("skipped", "the case is gone")
        return self._mail(case, f"reply#{entry_id}", entry_id, str(entry["body"]), None, False)

    def mail_solved(self, tenant_id: str, case_id: str, event_id: str) -> MailResult:
        """That the case is solved, with its satisfaction link (valid 30 days)."""
        case = self.table.get(keys.case(tenant_id, case_id))
        if case is None:
            return MailResult("skipped", "the case is gone")
        if case["status"] not in ("solved", "closed"):
            # Reopened before the notice went (the customer wrote meanwhile): none is due.
            return MailResult("skipped", "the case was reopened")
        token = csat_tokens.issue(self.csat_secret(), tenant_id, case_id)
        link = csat_tokens.csat_url(self.settings.csat_base_url, token)
        text = (
            f'Your request "{case["subject"]}" is solved.\n\n'
            f"How did we do? Rate our help (the link works for {csat_tokens.VALID_DAYS} "
            f"days):\n{link}\n\n"
            "If something is still not right, just reply to this email and the case "
            "reopens.\n"
        )
        return self._mail(case, f"solved#{event_id}", None, text, link, True)

    # --------------------------------------------------------------------------------------
    def _mail(
        self,
        case: Mapping[str, Any],
        mail_key: str,
        entry_id: str | None,
        text: str,
        link: str | None,
        automatic: bool,
    ) -> MailResult:
        tenant_id, case_id = case["tenant_id"], case["id"]
        to_address = self._recipient(case)
        if isinstance(to_address, MailResult):
            return to_address
        from_address, from_name = self._sender(case)
        reply_to = self._reply_to(from_address, tenant_id, case_id)
        in_reply_to, references = self._parents(tenant_id, case_id, entry_id)
        own_id = message_id(
            entry_id or mail_key.replace("#", "."), case_id, self.settings.mail_domain
        )
        raw = build_case_email(
            from_address=from_address,
            from_name=from_name,
            to_address=to_address,
            reply_to=reply_to,
            subject=str(case["subject"]),
            text=text,
            html=_html(text, link),
            message_id=own_id,
            in_reply_to=in_reply_to,
            references=references,
            tenant_id=tenant_id,
            case_id=case_id,
            extra_headers={"Auto-Submitted": "auto-generated"} if automatic else None,
        )
        claim_id = str(uuid.uuid4())
        if not self._claim(tenant_id, case_id, mail_key, claim_id, to_address, entry_id):
            return MailResult("duplicate")
        request = {
            "FromEmailAddress": from_address,
            "Destination": {"ToAddresses": [to_address]},
            "Content": {"Raw": {"Data": raw}},
        }
        try:
            response = self.ses.send_email(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in PERMANENT_SES_ERRORS:
                reason = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"[:1000]
                self._fail(tenant_id, case_id, mail_key, claim_id, entry_id, reason)
                return MailResult("failed", reason)
            self._release(tenant_id, case_id, mail_key, claim_id)
            raise SendLater(f"SES refused the send for now ({code})") from exc
        except (ReadTimeoutError, ConnectionClosedError):  # SES may have the email
            self._fail(tenant_id, case_id, mail_key, claim_id, entry_id, NO_ANSWER)
            return MailResult("failed", NO_ANSWER)
        except BotoCoreError as exc:  # the request never reached SES
            self._release(tenant_id, case_id, mail_key, claim_id)
            raise SendLater(f"SES could not be reached ({type(exc).__name__})") from exc
        ses_id = str(response["MessageId"])
        self._mark_sent(case, mail_key, claim_id, entry_id, own_id, ses_id, to_address)
        return MailResult("sent", ses_message_id=ses_id)

    def _recipient(self, case: Mapping[str, Any]) -> str | MailResult:
        tenant_id = case["tenant_id"]
        if not case.get("contact_id"):
            return MailResult("skipped", "the case has no contact")
        contact = self.table.get(keys.contact(tenant_id, case["contact_id"]), consistent=False)
        email = (contact or {}).get("email")
        if not isinstance(email, str) or not email:
            return MailResult("skipped", "the contact has no email address")
        suppressed = self.table.get(suppression_key(tenant_id, email), consistent=False)
        if suppressed and (
            "hard_bounce_at" in suppressed or suppressed.get("reason") == "hard_bounce"
        ):
            return MailResult("skipped", "the address bounced")
        return email

    def _sender(self, case: Mapping[str, Any]) -> tuple[str, str | None]:
        tenant_id, mailbox, name = case["tenant_id"], DEFAULT_MAILBOX, None
        if case.get("queue_id"):
            queue = self.table.get(keys.case_queue(tenant_id, case["queue_id"]), consistent=False)
            if queue is not None:
                mailbox = queue.get("mailbox") or DEFAULT_MAILBOX
                name = queue.get("name")
        return f"{namespace(tenant_id)}.{mailbox}@{self.settings.mail_domain}", name

    def _reply_to(self, from_address: str, tenant_id: str, case_id: str) -> str:
        try:
            return reply_address.reply_address(
                from_address, tenant_id, case_id, self.reply_secret()
            )
        except ValueError:  # a namespace and mailbox too long for a token beside them
            return from_address

    def _parents(
        self, tenant_id: str, case_id: str, entry_id: str | None
    ) -> tuple[str | None, list[str]]:
        """(In-Reply-To, References): the conversation's mail before `entry_id` (or all of
        it), by the ids its emails carry: the first and the most recent ones."""
        listing = ListQuery("case-conversation", keys.case_partition(tenant_id, case_id))
        low = keys.MESSAGE_PREFIX
        high = keys.MESSAGE_PREFIX + (entry_id or "\U0010ffff")
        recent = self.table.query(
            listing, _RECENT_PARENTS, None, sort_between=(low, high), where=_HAS_MESSAGE_ID
        ).items
        recent = [item for item in recent if item.get("id") != entry_id]
        if not recent:
            return None, []
        first = self.table.query(
            listing, 1, None, newest_first=False, sort_between=(low, high), where=_HAS_MESSAGE_ID
        ).items
        ids = [str(item["message_id"]) for item in first + list(reversed(recent))]
        ids = list(dict.fromkeys(ids))
        return ids[-1], ids

    # The mail item ----------------------------------------------------------------------
    def _claim(
        self,
        tenant_id: str,
        case_id: str,
        mail_key: str,
        claim_id: str,
        to_address: str,
        entry_id: str | None,
    ) -> bool:
        """Ours to send: False when an earlier delivery claimed (or sent) it."""
        item = {
            **keys.case_mail(tenant_id, case_id, mail_key),
            "type": MAIL_ITEM,
            "tenant_id": tenant_id,
            "case_id": case_id,
            "status": "claimed",
            "claim_id": claim_id,
            "to": to_address,
            "claimed_at": self.clock(),
        }
        if not self._write_once(self.op.put(item, "attribute_not_exists(PK)")):
            held = self.table.get(keys.case_mail(tenant_id, case_id, mail_key))
            if held and held.get("status") == "claimed":
                # A run that stopped after its claim: it may have sent; never send twice.
                self._fail(
                    tenant_id, case_id, mail_key, str(held["claim_id"]), entry_id, INTERRUPTED
                )
            return False
        return True

    def _release(self, tenant_id: str, case_id: str, mail_key: str, claim_id: str) -> None:
        # Not ours any more (False): nothing to give back.
        self._write_once(
            self.op.delete(
                keys.case_mail(tenant_id, case_id, mail_key), "claim_id = :c", c=claim_id
            )
        )

    def _write_once(self, operation: dict[str, Any]) -> bool:
        """One conditional write outside a transaction (half a transaction's cost): False
        when its condition failed."""
        ((kind, body),) = operation.items()
        call = {"Put": "put_item", "Delete": "delete_item", "Update": "update_item"}[kind]
        try:
            getattr(self.table.client, call)(**body)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _fail(
        self,
        tenant_id: str,
        case_id: str,
        mail_key: str,
        claim_id: str,
        entry_id: str | None,
        reason: str,
    ) -> None:
        writes = [
            self.op.update(
                keys.case_mail(tenant_id, case_id, mail_key),
                "SET #s = :failed, reason = :r, failed_at = :at",
                "claim_id = :c AND #s = :claimed",
                {"#s": "status"},
                failed="failed",
                claimed="claimed",
                r=reason,
                at=self.clock(),
                c=claim_id,
            )
        ]
        if entry_id:
            writes.append(
                self.op.update(
                    keys.case_message(tenant_id, case_id, entry_id),
                    "SET mail_status = :failed, mail_error = :r",
                    "attribute_exists(PK)",
                    failed="failed",
                    r=reason,
                )
            )
        with contextlib.suppress(TransactionCancelled):  # marked by another run already
            self.table.transact(writes)

    def _mark_sent(
        self,
        case: Mapping[str, Any],
        mail_key: str,
        claim_id: str,
        entry_id: str | None,
        own_id: str,
        ses_id: str,
        to_address: str,
    ) -> None:
        tenant_id, case_id = case["tenant_id"], case["id"]
        at = self.clock()
        ses_header_id = ses_message_id(ses_id, self.settings.region)
        writes = [
            self.op.update(
                keys.case_mail(tenant_id, case_id, mail_key),
                "SET #s = :sent, ses_message_id = :ses, message_id = :mid, sent_at = :at",
                "claim_id = :c",
                {"#s": "status"},
                sent="sent",
                ses=ses_id,
                mid=ses_header_id,
                at=at,
                c=claim_id,
            )
        ]
        if entry_id:
            writes.append(
                self.op.update(
                    keys.case_message(tenant_id, case_id, entry_id),
                    "SET message_id = :mid, own_message_id = :own, mail_status = :sent, "
                    "mailed_to = :to, mailed_at = :at",
                    "attribute_exists(PK)",
                    mid=ses_header_id,
                    own=own_id,
                    sent="sent",
                    to=to_address,
                    at=at,
                )
            )
        for known in dict.fromkeys((ses_header_id, own_id)):
            writes.append(
                self.op.put(
                    {
                        **keys.case_message_id(tenant_id, thread_key(known)),
                        "type": MESSAGE_ID_ITEM,
                        "tenant_id": tenant_id,
                        "case_id": case_id,
                        "message_id": known,
                    }
                )
            )
        # Cancelled: the claim was marked failed meanwhile by a run that found it interrupted.
        with contextlib.suppress(TransactionCancelled):
            self.table.transact(writes)


def ses_message_id(ses_id: str, region: str) -> str:
    """The Message-ID header SES writes for the message it accepted as `ses_id` (it replaces
    ours): `<id@email.amazonses.com>` in us-east-1, `<id@<region>.amazonses.com>` elsewhere."""
    host = "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    return f"<{ses_id}@{host}>".lower()


def _html(text: str, link: str | None) -> str:
    """The text as simple HTML paragraphs (escaped), the satisfaction link made a link."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block).replace("\n", "<br>")
        if link:
            escaped = escaped.replace(
                html.escape(link), f'<a href="{html.escape(link)}">{html.escape(link)}</a>'
            )
        paragraphs.append(f"<p>{escaped}</p>")
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        + "".join(paragraphs)
        + "</body></html>"
    )
