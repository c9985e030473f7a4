"""What happens to a campaign email after it is sent: SES's events about it, and the
contact's unsubscribe, applied to the recipient, the campaign's counters, the contact's
activities, the suppression list and the contact's consent (functions/email_events).

SES publishes each event of a campaign email with the email's tags (`mail.tags`:
tenant_id, campaign_id, contact_id; crm_core/campaigns/messages.py): they name the
recipient. An event without them (a test send, another sender's email) is not ours.

Exactly once, whatever is delivered twice or at once: each kind sets `<status>_at` on the
recipient under `attribute_not_exists`, in the same transaction as the counter's ADD and,
for delivered, opened, clicked and hard-bounced, the contact's activity
(`ActivityStore.log(..., extra_writes=...)`); a duplicate fails the condition and writes nothing.
The recipient's status moves only up `STATUS_RANK` (an Open before its Delivery leaves it
`opened`; the Delivery still counts), under a condition on the status as read, and the
write is tried again on fresh data when a concurrent one moved it.

What each SES event writes (the recipient; the counter; anything more):
- Delivery: `delivered_at`; delivered; the `email_delivered` activity.
- Open: `opened_at` (the first open); opened; `email_opened`.
- Click: `clicked_at` (the first click), `last_link` and `last_clicked_at` (the latest);
  clicked; `email_clicked`.
- Bounce, Permanent: `bounced_at`; bounced; the address suppressed (hard_bounce);
  `email_bounced`.
- Bounce, Transient or Undetermined: `soft_bounced_at`; nothing counted or suppressed.
- Complaint: `complained_at`; complained; the address suppressed (complaint); the contact
  unsubscribed (ContactUnsubscribed, method complaint); the campaign paused when its
  complaint rate is too high.
- Reject: `failed` with `rejected_at` and `error`; failed +1 and sent -1.
- Send, DeliveryDelay, Rendering Failure, Subscription: nothing.

- Send: the sender records `sent` (with the message id and the count) itself, in the
  transaction its claim guards; writing the recipient meanwhile would only race it.
- Reject: SES took the message but never tried to deliver it. It was counted `sent`; it
  moves to `failed` (sent -1, failed +1), so `sent + failed + skipped` still counts each
  recipient once, which is what ends a send (`campaign_store.is_complete`).
- Complaint: the strongest opt-out there is. Besides the suppression (no campaign mails
  the address again), the contact's consent becomes `unsubscribed` through the same write
  as the unsubscribe link (`unsubscribing.py`, which suppresses the contact's addresses as
  `unsubscribed` too), so the CRM shows it and ContactUnsubscribed follows; its consumer
  logs the `unsubscribed` activity and, as the complaint was counted already, leaves the
  recipient alone. An opt-in later lifts only the `unsubscribed` reason: the complaint's
  stays.
- A recipient still `queued` or `sending` is the sender's to write: the event is early
  (SES was faster than the sender's own transaction), so it is refused (`NotYetSent`) and
  retried by Lambda.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from crm_core import keys
from crm_core.activities.models import ActivityType, BounceType, UnsubscribeMethod, validate_fields
from crm_core.activities.store import ActivityStore
from crm_core.campaigns import recipients
from crm_core.campaigns.campaign_models import (
    STATUS_RANK,
    CampaignState,
    RecipientStatus,
    counter,
)
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.complaint_rate import complaint_rate_exceeded, pause_reason
from crm_core.campaigns.ses_events import (
    Bounce,
    SesEvent,
    SesEventType,
    Target,
    moment,
    reported_addresses,
    target_of,
)
from crm_core.campaigns.suppression import SuppressionReason, suppress
from crm_core.campaigns.unsubscribing import Method, Unsubscriber
from crm_core.clock import format_iso, now_iso
from crm_core.contacts.items import MergeChainTooLong
from crm_core.dynamo import Item
from crm_core.errors import Conflict, NotFound, TooManyRequests
from crm_core.events.contacts import ContactUnsubscribed
from crm_core.events.envelope import Origin
from crm_core.ids import is_ulid
from crm_core.table import Table, TransactionCancelled, backoff

PRODUCER = "email_events"
# Writes tried again on fresh data when a concurrent one moved the recipient first.
ATTEMPTS = 8
MAX_LINK_CHARS = 2048
MAX_ERROR_CHARS = 500
_NOT_YET_SENT = frozenset({RecipientStatus.QUEUED, RecipientStatus.SENDING})
_UNSUBSCRIBE_METHODS = {
    Method.ONE_CLICK.value: UnsubscribeMethod.ONE_CLICK,
    Method.PAGE.value: UnsubscribeMethod.LINK,
    Method.COMPLAINT.value: UnsubscribeMethod.COMPLAINT,
}


class EmailEventOutcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # recorded before: nothing written
    NOT_OURS = "not_ours"  # no campaign tags (a test send, another sender)
    NOT_TRACKED = "not_tracked"  # a kind of event we keep nothing of
    MISSING = "missing"  # no such recipient (tenant, campaign or recipient)


@dataclass
class Applied:
    kind: str
    outcome: EmailEventOutcome
    target: Target | None = None
    activity_id: str | None = None
    suppressed: int = 0
    unsubscribed: str | None = None
    paused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"kind": self.kind, "outcome": self.outcome.value}
        if self.target is not None:
            summary.update(
                tenant_id=self.target.tenant_id,
                campaign_id=self.target.campaign_id,
                contact_id=self.target.contact_id,
            )
        if self.activity_id:
            summary["activity_id"] = self.activity_id
        if self.suppressed:
            summary["suppressed"] = self.suppressed
        if self.unsubscribed:
            summary["unsubscribed"] = self.unsubscribed
        if self.paused:
            summary["paused"] = True
        return {**summary, **self.extra}


class NotYetSent(RuntimeError):
    """The event is about a message whose recipient the sender has not yet marked sent:
    transient (Lambda retries it, by when the sender's write is there)."""


class _Refused(Exception):
    """A condition of ours on the recipient failed: read it again."""


@dataclass(frozen=True)
class _Activity:
    type: ActivityType
    fields: dict[str, Any]
    occurred_at: datetime


class EngagementRecorder:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op
        self.activities = ActivityStore(table)
        self.campaigns = CampaignStore(table)
        self.unsubscriber = Unsubscriber(table)

    # SES events -------------------------------------------------------------------------
    def apply(self, ses: SesEvent, correlation_id: str | None = None) -> Applied:
        target = target_of(ses.mail)
        if target is None:
            return Applied(ses.event_type, EmailEventOutcome.NOT_OURS)
        origin = Origin.system(PRODUCER, correlation_id)
        kind = ses.event_type
        if kind == SesEventType.DELIVERY:
            return self._delivered(ses, target, origin)
        if kind == SesEventType.OPEN:
            return self._opened(ses, target, origin)
        if kind == SesEventType.CLICK:
            return self._clicked(ses, target, origin)
        if kind == SesEventType.BOUNCE:
            return self._bounced(ses, target, origin)
        if kind == SesEventType.COMPLAINT:
            return self._complained(ses, target, origin)
        if kind == SesEventType.REJECT:
            return self._rejected(ses, target)
        return Applied(kind, EmailEventOutcome.NOT_TRACKED, target)

    def _delivered(self, ses: SesEvent, t: Target, origin: Origin) -> Applied:
        at = moment(ses.delivery.timestamp if ses.delivery else None, ses.mail.timestamp)
        activity = self._engagement(ActivityType.EMAIL_DELIVERED, t, ses, at)
        outcome, activity_id = self._record(
            t, RecipientStatus.DELIVERED, "delivered", at, origin, activity=activity
        )
        return Applied(ses.event_type, outcome, t, activity_id)

    def _opened(self, ses: SesEvent, t: Target, origin: Origin) -> Applied:
        # Unique opens: the first one counts and is logged; later ones are duplicates.
        at = moment(ses.open.timestamp if ses.open else None, ses.mail.timestamp)
        activity = self._engagement(ActivityType.EMAIL_OPENED, t, ses, at)
        outcome, activity_id = self._record(
            t, RecipientStatus.OPENED, "opened", at, origin, activity=activity
        )
        return Applied(ses.event_type, outcome, t, activity_id)

    def _clicked(self, ses: SesEvent, t: Target, origin: Origin) -> Applied:
        at = moment(ses.click.timestamp if ses.click else None, ses.mail.timestamp)
        link = ((ses.click.link if ses.click else None) or "")[:MAX_LINK_CHARS]
        activity = self._engagement(ActivityType.EMAIL_CLICKED, t, ses, at, url=link)
        sets = {"last_link": link, "last_clicked_at": format_iso(at)} if link else {}
        outcome, activity_id = self._record(
            t, RecipientStatus.CLICKED, "clicked", at, origin, activity=activity, sets=sets
        )
        if outcome == EmailEventOutcome.DUPLICATE and link:
            self._later_click(t, link, at)
        return Applied(ses.event_type, outcome, t, activity_id)

    def _later_click(self, t: Target, link: str, at: datetime) -> None:
        """A click after the first (or the first again): only the last link moves, if this
        click is later than the one it shows."""
        update = self.op.update(
            t.key(),
            "SET last_link = :link, last_clicked_at = :at",
            "attribute_exists(clicked_at) AND "
            "(attribute_not_exists(last_clicked_at) OR last_clicked_at < :at)",
            link=link,
            at=format_iso(at),
        )
        with contextlib.suppress(TransactionCancelled):  # a later click is shown already
            self.table.transact([update])

    def _bounced(self, ses: SesEvent, t: Target, origin: Origin) -> Applied:
        bounce = ses.bounce
        assert bounce is not None  # SesEvent's validator
        at = moment(bounce.timestamp, ses.mail.timestamp)
        if bounce.bounce_type != "Permanent":
            return self._soft_bounced(ses, t, at, bounce)
        addresses = reported_addresses(bounce.bounced_recipients, ses.mail.destination)
        now = now_iso()
        parts = [
            suppress(
                self.op, t.tenant_id, address, SuppressionReason.HARD_BOUNCE, now, t.campaign_id
            )
            for address in addresses
        ]
        activity = self._engagement(
            ActivityType.EMAIL_BOUNCED, t, ses, at, bounce_type=BounceType.PERMANENT.value
        )
        sets = {"bounce_type": BounceType.PERMANENT.value}
        if bounce.bounce_sub_type:
            sets["bounce_sub_type"] = bounce.bounce_sub_type[:100]
        outcome, activity_id = self._record(
            t,
            RecipientStatus.BOUNCED,
            "bounced",
            at,
            origin,
            activity=activity,
            sets=sets,
            parts=parts,
        )
        suppressed = len(parts) if outcome == EmailEventOutcome.RECORDED else 0
        return Applied(ses.event_type, outcome, t, activity_id, suppressed=suppressed)

    def _soft_bounced(self, ses: SesEvent, t: Target, at: datetime, bounce: Bounce) -> Applied:
        """Transient or Undetermined: recorded on the recipient (the first), counted
        nowhere, nothing suppressed."""
        kind = f"{ses.event_type} {bounce.bounce_type}"
        for attempt in range(1, ATTEMPTS + 1):
            recipient = self.table.get(t.key())
            if recipient is None:
                return Applied(kind, EmailEventOutcome.MISSING, t)
            if recipient.get("soft_bounced_at"):
                return Applied(kind, EmailEventOutcome.DUPLICATE, t)
            self._sent_already(recipient)
            update = self.op.update(
                t.key(),
                "SET soft_bounced_at = :at, soft_bounce_type = :type",
                "attribute_exists(PK) AND attribute_not_exists(soft_bounced_at)",
                at=format_iso(at),
                type=bounce.bounce_type[:40],
            )
            try:
                self.table.transact([update])
            except TransactionCancelled:
                backoff(attempt)
                continue
            return Applied(kind, EmailEventOutcome.RECORDED, t)
        raise TooManyRequests("the recipient keeps changing; try again")

    def _complained(self, ses: SesEvent, t: Target, origin: Origin) -> Applied:
        complaint = ses.complaint
        assert complaint is not None  # SesEvent's validator
        at = moment(complaint.timestamp, ses.mail.timestamp)
        addresses = reported_addresses(complaint.complained_recipients, ses.mail.destination)
        now = now_iso()
        parts = [
            suppress(self.op, t.tenant_id, address, SuppressionReason.COMPLAINT, now, t.campaign_id)
            for address in addresses
        ]
        sets: dict[str, Any] = {}
        if complaint.complaint_feedback_type:
            sets["complaint_type"] = complaint.complaint_feedback_type[:100]
        outcome, _ = self._record(
            t, RecipientStatus.COMPLAINED, "complained", at, origin, sets=sets, parts=parts
        )
        applied = Applied(ses.event_type, outcome, t)
        if outcome == EmailEventOutcome.MISSING:
            return applied
        applied.suppressed = len(parts) if outcome == EmailEventOutcome.RECORDED else 0
        # Again on a duplicate: a first delivery that failed after its write left these
        # undone, and each is a no-op once done.
        unsubscribed = self.unsubscriber.unsubscribe(
            t.tenant_id, t.contact_id, t.campaign_id, Method.COMPLAINT, origin
        )
        applied.unsubscribed = unsubscribed.outcome.value
        applied.paused = self._pause_if_complaints_too_many(t, origin)
        return applied

    def _pause_if_complaints_too_many(self, t: Target, origin: Origin) -> bool:
        try:
            item = self.campaigns.load(t.tenant_id, t.campaign_id, content=False)
        except NotFound:
            return False
        if item["state"] != CampaignState.SENDING or not complaint_rate_exceeded(item):
            return False
        try:
            self.campaigns.pause(t.tenant_id, t.campaign_id, pause_reason(item), origin)
        except Conflict:
            return False  # paused, cancelled or finished meanwhile
        return True

    def _rejected(self, ses: SesEvent, t: Target) -> Applied:
        at = format_iso(moment(ses.mail.timestamp))
        reason = (ses.reject.reason if ses.reject else None) or "no reason given"
        error = f"SES rejected the message: {reason}"[:MAX_ERROR_CHARS]
        for attempt in range(1, ATTEMPTS + 1):
            recipient = self.table.get(t.key())
            if recipient is None:
                return Applied(ses.event_type, EmailEventOutcome.MISSING, t)
            if recipient.get("rejected_at"):
                return Applied(ses.event_type, EmailEventOutcome.DUPLICATE, t)
            status = self._sent_already(recipient)
            sets = {"rejected_at": at, "error": error}
            if status == RecipientStatus.SENT:
                ops = recipients.mark(
                    self.op,
                    t.tenant_id,
                    t.campaign_id,
                    t.contact_id,
                    RecipientStatus.FAILED,
                    condition="attribute_not_exists(#at) AND #status = :sent",
                    values={"sent": RecipientStatus.SENT.value},
                    sets={"failed_at": at, **sets},
                )
                ops.append(
                    self.op.update(
                        keys.campaign(t.tenant_id, t.campaign_id),
                        "ADD #failed :one, #sent :minus",
                        None,
                        {"#failed": counter("failed"), "#sent": counter("sent")},
                        one=1,
                        minus=-1,
                    )
                )
            else:
                # Not `sent` (an Open or a Delivery of a rejected message cannot be): the
                # fact is kept, nothing is moved or counted.
                ops = [
                    self.op.update(
                        t.key(),
                        "SET rejected_at = :at, #error = :error",
                        "attribute_exists(PK) AND attribute_not_exists(rejected_at)",
                        {"#error": "error"},
                        at=at,
                        error=error,
                    )
                ]
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                backoff(attempt)
                continue
            return Applied(ses.event_type, EmailEventOutcome.RECORDED, t)
        raise TooManyRequests("the recipient keeps changing; try again")

    # ContactUnsubscribed ------------------------------------------------------------------
    def unsubscribed(self, event: ContactUnsubscribed) -> Applied:
        """The `unsubscribed` activity on the contact and, for a campaign's link, the
        recipient marked unsubscribed (+ count_unsubscribed), in one transaction.

        The recipient keeps the event's id: a retry after that transaction (the consumer's
        own record of the event lost with a crash) finds it and writes nothing again."""
        data = event.data
        tenant_id = event.tenant_id
        origin = Origin.system(PRODUCER, event.metadata.correlation_id)
        campaign_id = data.campaign_id if data.campaign_id and is_ulid(data.campaign_id) else None
        method = _UNSUBSCRIBE_METHODS.get(data.method, UnsubscribeMethod.MANUAL)
        values: dict[str, Any] = {"method": method.value}
        if campaign_id:
            values["campaign_id"] = campaign_id
        at = moment(event.metadata.occurred_at)
        activity = _Activity(
            ActivityType.UNSUBSCRIBED, validate_fields(ActivityType.UNSUBSCRIBED, values), at
        )
        # A complaint counted its recipient already (as complained).
        counted = campaign_id is not None and method != UnsubscribeMethod.COMPLAINT
        # The recipient is keyed by the contact the link was sent to (before any merge).
        target = Target(tenant_id, campaign_id or "", data.link_contact_id or data.contact_id)
        for attempt in range(1, ATTEMPTS + 1):
            parts: list[dict[str, Any]] = []
            if counted:
                recipient = self.table.get(target.key())
                if recipient is not None:
                    if recipient.get("unsubscribe_event_id") == event.event_id:
                        return Applied(event.DETAIL_TYPE, EmailEventOutcome.DUPLICATE, target)
                    if not recipient.get("unsubscribed_at"):
                        parts = self._mark(
                            target,
                            RecipientStatus.UNSUBSCRIBED,
                            recipient,
                            at,
                            "unsubscribed",
                            sets={"unsubscribe_event_id": event.event_id},
                        )
            try:
                activity_id = self._write(parts, target, activity, origin)
            except _Refused:
                backoff(attempt)
                continue
            applied = Applied(event.DETAIL_TYPE, EmailEventOutcome.RECORDED, target, activity_id)
            applied.extra["recipient_counted"] = bool(parts)
            return applied
        raise TooManyRequests("the recipient keeps changing; try again")

    # The one write of a recipient's step ----------------------------------------------------
    def _record(
        self,
        t: Target,
        status: RecipientStatus,
        count: str,
        at: datetime,
        origin: Origin,
        *,
        activity: _Activity | None = None,
        sets: Mapping[str, Any] | None = None,
        parts: Sequence[dict[str, Any]] = (),
    ) -> tuple[EmailEventOutcome, str | None]:
        """`<status>_at` set on the recipient once, the campaign's `count` + 1, `parts` and
        the activity, in one transaction; (outcome, the activity's id)."""
        for attempt in range(1, ATTEMPTS + 1):
            recipient = self.table.get(t.key())
            if recipient is None:
                return EmailEventOutcome.MISSING, None
            if recipient.get(f"{status.value}_at"):
                return EmailEventOutcome.DUPLICATE, None
            self._sent_already(recipient)
            marks = self._mark(t, status, recipient, at, count, sets=sets)
            try:
                activity_id = self._write([*marks, *parts], t, activity, origin)
            except _Refused:
                # A duplicate or a concurrent step got there first: read again.
                backoff(attempt)
                continue
            return EmailEventOutcome.RECORDED, activity_id
        raise TooManyRequests("the recipient keeps changing; try again")

    def _mark(
        self,
        t: Target,
        status: RecipientStatus,
        recipient: Item,
        at: datetime,
        count: str,
        *,
        sets: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The recipient's `<status>_at` (and its status, if `status` ranks higher than the
        one read, which the condition then requires) and the counter."""
        current = RecipientStatus(recipient["status"])
        # `queued` and `sending` are the sender's: a step never takes a recipient out of them.
        rises = current not in _NOT_YET_SENT and STATUS_RANK[status] > STATUS_RANK[current]
        if rises:
            condition = "attribute_not_exists(#at) AND #status = :current"
            values: dict[str, Any] | None = {"current": current.value}
        else:
            condition = "attribute_not_exists(#at) AND attribute_exists(#status)"
            values = None
        return recipients.mark(
            self.op,
            t.tenant_id,
            t.campaign_id,
            t.contact_id,
            status,
            condition=condition,
            values=values,
            sets={f"{status.value}_at": format_iso(at), **(sets or {})},
            count=count,
            move_status=rises,
        )

    def _write(
        self,
        ops: list[dict[str, Any]],
        t: Target,
        activity: _Activity | None,
        origin: Origin,
    ) -> str | None:
        """`ops` with the activity logged on the contact (or the one at the end of its
        chain of merges) in the same transaction; without it when the contact is gone. The
        activity's id, if one was logged. _Refused when a condition of `ops` failed."""
        if activity is None:
            self._transact(ops)
            return None
        contact_id = t.contact_id
        # A refusal names the survivor at the end of the chain: another round only when the
        # survivor itself is merged meanwhile.
        for _ in range(ATTEMPTS):
            try:
                item = self.activities.log(
                    t.tenant_id,
                    contact_id,
                    activity.type,
                    activity.fields,
                    activity.occurred_at,
                    origin,
                    extra_writes=lambda _: ops,
                )
            except NotFound:
                # A deleted contact: its campaign's recipient and counters still change.
                self._transact(ops)
                return None
            except MergeChainTooLong:
                raise  # corrupt redirects: the event waits in the DLQ, visibly
            except Conflict as conflict:
                survivor = conflict.extra.get("merged_into")
                if survivor is None:
                    raise _Refused from None  # our part of the transaction was refused
                contact_id = str(survivor)
                continue
            return str(item["id"])
        raise TooManyRequests(f"contact {t.contact_id} keeps being merged; try again")

    def _transact(self, ops: list[dict[str, Any]]) -> None:
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            raise _Refused from None

    def _sent_already(self, recipient: Item) -> RecipientStatus:
        status = RecipientStatus(recipient["status"])
        if status in _NOT_YET_SENT:
            raise NotYetSent(
                f"recipient {recipient.get('contact_id')} is still {status.value}: "
                "the sender has not recorded the send yet"
            )
        return status

    def _engagement(
        self, activity_type: ActivityType, t: Target, ses: SesEvent, at: datetime, **more: str
    ) -> _Activity | None:
        """The activity of an engagement event, its fields as its type allows them: without
        the subject if it does not fit; None if a field it needs (a click's URL) does not."""
        values: dict[str, Any] = {
            "campaign_id": t.campaign_id,
            "message_id": ses.mail.message_id,
            **more,
        }
        headers = ses.mail.common_headers
        subject = (headers.subject or "").strip()[:998] if headers else ""
        for attempt in ({**values, "subject": subject} if subject else values, values):
            try:
                return _Activity(activity_type, validate_fields(activity_type, attempt), at)
            except ValidationError:
                continue
        return None
