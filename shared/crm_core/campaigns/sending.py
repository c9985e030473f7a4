"""Sending a campaign's recipients, one send-queue message at a time
(functions/campaign_sender).

A message names up to `recipients.GROUP_SIZE` recipients of one send (`SendBatch`). The
sender may get it twice, at once or days apart (the dispatcher enqueues a recipient again
whenever it runs again; SQS delivers at least once), so each recipient is mailed at most
once whatever happens, and counted once:

- The campaign is read once per message (and kept for the next one of the invocation:
  the read that ends a message is the next one's). A campaign not `sending` this
  dispatch (paused, cancelled, failed, sent) drops the message: its recipients stay
  `queued`, and a resume enqueues them again.
- One consistent BatchGetItem reads the message's recipients and contacts (100 keys),
  another the suppression items of the contacts' current addresses; the tenant's email
  settings are read once per invocation. No settings: the message fails (it is retried,
  then waits in the send DLQ); the API refuses to schedule or send without them, so only
  settings deleted mid-send get here.
- Only a `queued` recipient is handled. It is `skipped` (with `skip_reason`) when its
  contact is gone or merged away, has no email, has not consented (`email_consent` is not
  `subscribed`: an unsubscribe after the dispatch counts) or its address is suppressed; the
  message's skips are one transaction with `ADD count_skipped :n`.
- Any other is claimed (`queued` -> `sending` with a new `claim_id`, a conditional
  UpdateItem: of two deliveries at once, one claims it), waits for the rate limiter, and is
  sent (SESv2 SendEmail, the raw message of `messages.build`, the configuration set, the
  tags tenant/campaign/contact). Then `sent`, with `sent_at`, `message_id` and the address,
  and `ADD count_sent 1`, in one transaction conditioned on the claim and on
  `attribute_not_exists(sent_at)`: `count_sent` is added only by the write that sets
  `sent_at`, whoever makes it. If email_events got there first (a Delivery, an Open, moved
  the status past `sending`), the same transaction is made without moving the status,
  which only ever goes up (`STATUS_RANK`).
- SES throttling or an outage (TooManyRequests, Throttling, LimitExceeded, SendingPaused,
  AccountSuspended, any error not the message's own, a connection that never reached SES,
  botocore's retries exhausted): the claim is released (`sending` -> `queued`) and the
  message fails (`SendLater`): SQS delivers it again after its visibility timeout, and only
  its recipients still `queued` are handled then. AccountSuspended is retried, not failed:
  it is the account's state, not the recipient's, and failing every recipient would end
  the campaign for nothing; the send DLQ's alarm calls for a person.
- An error of the message itself (MessageRejected, MailFromDomainNotVerified, BadRequest),
  or a template that does not render for this contact: `failed` with `error`,
  `ADD count_failed 1`. So is a send SES never answered (a read timeout, a connection
  closed before the answer, after botocore's own retries): it may have been sent, so it is
  never sent again.
- A recipient found `sending` with a claim older than `STALE_CLAIM_SECONDS` (the function's
  timeout is 120 s) belonged to an invocation that died between its claim and its outcome:
  SES may have the email, so it is `failed` ("interrupted ..."), never sent again. A
  younger claim is an invocation at work: left to it.
- Time: a recipient is claimed only while `TIME_RESERVE_MS` of the invocation is left;
  otherwise the message fails (`OutOfTime`) and its recipients not yet handled stay
  `queued` for the redelivery.
- After each message the campaign is read again: `sending`, `dispatch_done`, and every
  recipient sent, failed or skipped, it moves to `sent` (CampaignSent).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)

from crm_core import keys
from crm_core.campaigns import messages, recipients, templates, unsubscribe_tokens
from crm_core.campaigns.campaign_models import (
    STATUS_RANK,
    CampaignState,
    RecipientStatus,
    SkipReason,
    counter,
)
from crm_core.campaigns.campaign_store import (
    CONTENT_FIELDS,
    CampaignStore,
    is_complete,
)
from crm_core.campaigns.recipients import SendBatch
from crm_core.campaigns.send_policy import Candidate, triage, why_dropped
from crm_core.campaigns.send_rate import RateLimiter
from crm_core.campaigns.suppression import normal, suppression_key
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import NotFound, Unprocessable
from crm_core.events.envelope import Origin
from crm_core.invocation import OutOfTime
from crm_core.table import Table, TransactionCancelled

PRODUCER = "campaign_sender"
ORIGIN = Origin.system(PRODUCER)
# The sender's timeout is 120 s: a claim this old is no invocation's any more.
STALE_CLAIM_SECONDS = 300
# Claim a recipient only while this much of the invocation is left: a send with botocore's
# retries, and the writes after it, fit in it.
TIME_RESERVE_MS = 20_000
INTERRUPTED = "interrupted after it was claimed; not resent so that it is never sent twice"
NO_ANSWER = "SES did not answer in time; not resent so that it is never sent twice"
MAX_ERROR_CHARS = 1000
# SES errors that are the message's own: the recipient fails, the others go on.
PERMANENT_SES_ERRORS = frozenset(
    {"MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"}
)
# Throttling: SES refused before accepting anything, so the same call may be made again.
THROTTLING_SES_ERRORS = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})
THROTTLED_ATTEMPTS = 3
THROTTLED_BACKOFF_S = 0.5
# SES errors of load or of the account: the recipient is sent later. Any error not named
# in either set is treated the same way (release and retry): it is not the recipient's.
RETRYABLE_SES_ERRORS = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "SendingPausedException",
        "AccountSuspendedException",
    }
)


class SendLater(RuntimeError):
    """SES could not take the message now: its delivery fails, SQS delivers it again."""


class NoEmailSettings(RuntimeError):
    """The tenant has no email settings (the footer's postal address): nothing is sent."""


@dataclass
class MessageResult:
    """What one message's handling did."""

    campaign_id: str
    dropped: str | None = None  # why the message was dropped, its recipients left queued
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: int = 0  # stale claims failed
    busy: int = 0  # claimed by another invocation at work
    handled_before: int = 0  # no longer queued when read
    finished: bool = False  # this message's end moved the campaign to sent

    def summary(self) -> dict[str, Any]:
        return asdict(self)


class Sender:
    def __init__(
        self,
        table: Table,
        ses: Any,
        token_secret: Callable[[], bytes],
        limiter: RateLimiter,
        *,
        configuration_set: str,
        unsubscribe_base_url: str,
        logger: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.sleep = sleep
        self.op = table.op
        self.ses = ses
        self.token_secret = token_secret
        self.limiter = limiter
        self.configuration_set = configuration_set
        self.unsubscribe_base_url = unsubscribe_base_url
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.campaigns = CampaignStore(table)
        self._campaign_items: dict[tuple[str, str], Item | None] = {}
        self._settings: dict[str, Item | None] = {}

    def begin(self) -> None:
        """A new invocation: forget what the last one read."""
        self._campaign_items.clear()
        self._settings.clear()

    # One message ------------------------------------------------------------------------
    def send(self, batch: SendBatch, time_left_ms: Callable[[], int]) -> MessageResult:
        tenant_id, campaign_id = batch.tenant_id, batch.campaign_id
        result = MessageResult(campaign_id)
        campaign = self._campaign(tenant_id, campaign_id)
        result.dropped = why_dropped(campaign, batch.dispatch_id)
        if result.dropped or campaign is None:
            return result
        settings = self._email_settings(tenant_id)
        contact_ids = list(dict.fromkeys(batch.contact_ids))
        found = self.table.batch_get(
            [keys.recipient(tenant_id, campaign_id, i) for i in contact_ids]
            + [keys.contact(tenant_id, i) for i in contact_ids],
            consistent=True,
        )
        id_of = {keys.contact(tenant_id, i)["PK"]: i for i in contact_ids}
        recipient_of = {i["contact_id"]: i for i in found if i["SK"] != keys.PROFILE}
        contact_of = {id_of[i["PK"]]: i for i in found if i["SK"] == keys.PROFILE}

        triaged = triage(contact_ids, recipient_of, contact_of)
        for contact_id in triaged.absent:
            self.log.warning("no such recipient", extra={"contact_id": contact_id})
        for recipient in triaged.claimed:
            self._claimed(tenant_id, campaign_id, recipient, result)
        result.handled_before += triaged.handled_before
        emails = (c.contact["email"] for c in triaged.candidates)
        triaged.suppress(self._suppressed(tenant_id, emails))
        result.skipped += self._skip(tenant_id, campaign_id, triaged.skips)

        for candidate in triaged.to_send():
            if time_left_ms() < TIME_RESERVE_MS:
                raise OutOfTime(f"{time_left_ms()} ms left: the rest of the message waits")
            self._send_one(campaign, settings, candidate, result)
        result.finished = self._after(tenant_id, campaign_id)
        return result

    def _send_one(
        self, campaign: Item, settings: Item, candidate: Candidate, result: MessageResult
    ) -> None:
        tenant_id, campaign_id = campaign["tenant_id"], campaign["id"]
        contact_id, contact = candidate.contact_id, candidate.contact
        token = unsubscribe_tokens.issue(self.token_secret(), tenant_id, contact_id, campaign_id)
        url = unsubscribe_tokens.unsubscribe_url(self.unsubscribe_base_url, token)
        footer = templates.Footer(settings["postal_address"], url, settings.get("company_name"))
        try:
            rendered = templates.render(
                campaign["subject"], campaign["html"], campaign["text"], contact, footer
            )
        except Unprocessable as refused:
            error = refused.detail
            if self._fail(tenant_id, campaign_id, contact_id, None, error, "template"):
                result.failed += 1
            return
        envelope = messages.Envelope(
            from_address=campaign["from_address"],
            to_address=contact["email"],
            from_name=campaign.get("from_name"),
            reply_to=campaign.get("reply_to"),
        )
        raw = messages.build(envelope, rendered, url, tenant_id, campaign_id)
        request = messages.send_request(
            raw,
            envelope,
            self.configuration_set,
            messages.campaign_tags(tenant_id, campaign_id, contact_id),
        )
        claim_id = str(uuid.uuid4())
        if not self._claim(tenant_id, campaign_id, contact_id, claim_id):
            result.busy += 1  # another delivery of the message took it just now
            return
        try:
            response = self._send_email(request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in PERMANENT_SES_ERRORS:
                error = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
                if self._fail(tenant_id, campaign_id, contact_id, claim_id, error, code):
                    result.failed += 1
                return
            self._release(tenant_id, campaign_id, contact_id, claim_id)
            raise SendLater(f"SES refused the send for now ({code})") from exc
        except (ReadTimeoutError, ConnectionClosedError):  # SES may have the email
            if self._fail(tenant_id, campaign_id, contact_id, claim_id, NO_ANSWER, "no_answer"):
                result.failed += 1
            return
        except BotoCoreError as exc:  # the request never reached SES (no connection)
            self._release(tenant_id, campaign_id, contact_id, claim_id)
            raise SendLater(f"SES could not be reached ({type(exc).__name__})") from exc
        if self._mark_sent(
            tenant_id, campaign_id, contact_id, claim_id, response["MessageId"], contact["email"]
        ):
            result.sent += 1

    def _send_email(self, request: dict[str, Any]) -> dict[str, Any]:
        """SendEmail at the send rate. Its client never retries (a repeat after a lost
        answer would be a second email); throttling, which SES answers before accepting
        anything, is retried here a few times before the message is sent later."""
        for attempt in range(1, THROTTLED_ATTEMPTS + 1):
            self.limiter.acquire()
            try:
                response: dict[str, Any] = self.ses.send_email(**request)
                return response
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code not in THROTTLING_SES_ERRORS or attempt == THROTTLED_ATTEMPTS:
                    raise
                self.sleep(THROTTLED_BACKOFF_S * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    # Recipient changes ------------------------------------------------------------------
    def _claim(self, tenant_id: str, campaign_id: str, contact_id: str, claim_id: str) -> bool:
        """queued -> sending, ours: False if it is not queued any more. Already ours is a
        success: botocore repeats an UpdateItem whose answer was lost, and the repeat must
        not read our own committed claim as another sender's."""
        return self._move(
            tenant_id,
            campaign_id,
            contact_id,
            RecipientStatus.SENDING,
            "#status = :queued OR (#status = :sending AND claim_id = :claim)",
            {
                "queued": RecipientStatus.QUEUED.value,
                "sending": RecipientStatus.SENDING.value,
                "claim": claim_id,
            },
            {"claim_id": claim_id, "claimed_at": now_iso()},
        )

    def _release(self, tenant_id: str, campaign_id: str, contact_id: str, claim_id: str) -> None:
        """Our claim given back (nothing was sent): sending -> queued."""
        released = self._move(
            tenant_id,
            campaign_id,
            contact_id,
            RecipientStatus.QUEUED,
            "#status = :sending AND claim_id = :claim",
            {"sending": RecipientStatus.SENDING.value, "claim": claim_id},
            {},
        )
        if not released:
            self.log.warning("the claim was gone when released", extra={"contact_id": contact_id})

    def _move(
        self,
        tenant_id: str,
        campaign_id: str,
        contact_id: str,
        status: RecipientStatus,
        condition: str,
        values: dict[str, Any],
        sets: dict[str, Any],
    ) -> bool:
        """A recipient's move that counts nothing: one conditional UpdateItem."""
        fields = {**recipients.status_keys(tenant_id, campaign_id, contact_id, status), **sets}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        names["#status"] = "status"
        update = self.op.update(
            keys.recipient(tenant_id, campaign_id, contact_id),
            "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            condition,
            names,
            **{f"f{i}": value for i, value in enumerate(fields.values())},
            **values,
        )
        try:
            self.table.update(update)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _mark_sent(
        self,
        tenant_id: str,
        campaign_id: str,
        contact_id: str,
        claim_id: str,
        message_id: str,
        email: str,
    ) -> bool:
        """Record the send and count it, once: False if it was counted already."""
        sets = {"sent_at": now_iso(), "message_id": message_id, "email": email}
        seen = RecipientStatus.SENDING
        for _ in range(3):
            operations = recipients.mark(
                self.op,
                tenant_id,
                campaign_id,
                contact_id,
                RecipientStatus.SENT,
                condition="#status = :seen AND claim_id = :claim AND attribute_not_exists(#at)",
                values={"seen": seen.value, "claim": claim_id},
                sets=sets,
                count="sent",
                # The status only goes up: a Delivery that arrived first stays shown.
                move_status=STATUS_RANK[seen] < STATUS_RANK[RecipientStatus.SENT],
            )
            operations[0]["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            try:
                self.table.transact(operations)
                return True
            except TransactionCancelled as cancelled:
                old = cancelled.items[0]
                if old is not None and old.get("message_id") == message_id:
                    # Our own transaction, committed, its answer lost: botocore repeated it
                    # (DynamoDB would answer the repeat's idempotency token; moto does not).
                    return True
                if old is None or "sent_at" in old or old.get("claim_id") != claim_id:
                    # Counted by whoever set sent_at first, or no longer our claim.
                    self.log.info("the send was recorded already", extra={"contact_id": contact_id})
                    return False
                seen = RecipientStatus(old["status"])
        raise RuntimeError("the recipient kept changing while its send was recorded")

    def _fail(
        self,
        tenant_id: str,
        campaign_id: str,
        contact_id: str,
        claim_id: str | None,
        error: str,
        kind: str,
    ) -> bool:
        """-> failed with `error`, counted: from our claim (`claim_id`), or from queued.
        The log names the `kind` only (an SES error's message may hold the address)."""
        if claim_id is None:
            condition = "#status = :queued AND attribute_not_exists(#at)"
            values = {"queued": RecipientStatus.QUEUED.value}
        else:
            condition = "#status = :sending AND claim_id = :claim AND attribute_not_exists(#at)"
            values = {"sending": RecipientStatus.SENDING.value, "claim": claim_id}
        operations = recipients.mark(
            self.op,
            tenant_id,
            campaign_id,
            contact_id,
            RecipientStatus.FAILED,
            condition=condition,
            values=values,
            sets={"failed_at": now_iso(), "error": error[:MAX_ERROR_CHARS]},
            count="failed",
        )
        try:
            self.table.transact(operations)
        except TransactionCancelled:
            return False
        self.log.warning("recipient failed", extra={"contact_id": contact_id, "kind": kind})
        return True

    def _skip(self, tenant_id: str, campaign_id: str, skips: dict[str, SkipReason]) -> int:
        """The message's skips in one transaction (the recipients and one ADD); those another
        delivery skipped first are left out and the rest written again. How many it made."""
        pending = dict(skips)
        while pending:
            now = now_iso()
            operations: list[dict[str, Any]] = []
            for contact_id, reason in pending.items():
                operations += recipients.mark(
                    self.op,
                    tenant_id,
                    campaign_id,
                    contact_id,
                    RecipientStatus.SKIPPED,
                    condition="#status = :queued AND attribute_not_exists(#at)",
                    values={"queued": RecipientStatus.QUEUED.value},
                    sets={"skipped_at": now, "skip_reason": reason.value},
                )
            operations.append(self._add(tenant_id, campaign_id, "skipped", len(pending)))
            try:
                self.table.transact(operations)
                return len(pending)
            except TransactionCancelled as cancelled:
                taken = {c for n, c in enumerate(pending) if cancelled.failed(n)}
                if not taken:
                    raise
                pending = {c: r for c, r in pending.items() if c not in taken}
        return 0

    def _add(self, tenant_id: str, campaign_id: str, name: str, n: int) -> dict[str, Any]:
        return self.op.update(
            keys.campaign(tenant_id, campaign_id),
            "ADD #count :n",
            None,
            {"#count": counter(name)},
            n=n,
        )

    def _claimed(
        self, tenant_id: str, campaign_id: str, recipient: Item, result: MessageResult
    ) -> None:
        """A recipient found `sending`: an invocation at work, or one that died."""
        if not self._stale(recipient.get("claimed_at")):
            result.busy += 1
            return
        contact_id, claim_id = recipient["contact_id"], recipient.get("claim_id")
        if self._fail(tenant_id, campaign_id, contact_id, claim_id, INTERRUPTED, "interrupted"):
            result.interrupted += 1
            result.failed += 1

    def _stale(self, claimed_at: str | None) -> bool:
        if not claimed_at:
            return True
        moment = datetime.fromisoformat(claimed_at.replace("Z", "+00:00")).timestamp()
        return self.clock() - moment > STALE_CLAIM_SECONDS

    # Reads ------------------------------------------------------------------------------
    def _campaign(self, tenant_id: str, campaign_id: str) -> Item | None:
        name = (tenant_id, campaign_id)
        if name not in self._campaign_items:
            try:
                item: Item | None = self.campaigns.load(tenant_id, campaign_id)
            except NotFound:
                item = None
            self._campaign_items[name] = item
        return self._campaign_items[name]

    def _email_settings(self, tenant_id: str) -> Item:
        if tenant_id not in self._settings:
            self._settings[tenant_id] = self.table.get(keys.email_settings(tenant_id))
        settings = self._settings[tenant_id]
        if not settings or not settings.get("postal_address"):
            self._settings.pop(tenant_id, None)  # read again on the next message
            raise NoEmailSettings(
                "the tenant has no email settings (the postal address every email shows)"
            )
        return settings

    def _suppressed(self, tenant_id: str, emails: Iterable[str]) -> set[str]:
        wanted = sorted({normal(e) for e in emails})
        if not wanted:
            return set()
        found = self.table.batch_get(
            [suppression_key(tenant_id, e) for e in wanted], consistent=True
        )
        return {item["email"] for item in found}

    def _after(self, tenant_id: str, campaign_id: str) -> bool:
        """The campaign read again (for the next message too); finished if it is complete."""
        item = self.table.get(keys.campaign(tenant_id, campaign_id))
        cached = self._campaign_items.get((tenant_id, campaign_id))
        if item is not None and cached is not None:
            # The bodies do not change once sending: keep them (their own item).
            item = {**item, **{k: cached[k] for k in CONTENT_FIELDS if k in cached}}
        self._campaign_items[(tenant_id, campaign_id)] = item
        if item is None or item.get("state") != CampaignState.SENDING.value:
            return False
        if not is_complete(item):
            return False
        return self.campaigns.finish_if_complete(tenant_id, campaign_id, ORIGIN)
