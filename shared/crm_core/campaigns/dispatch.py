"""A campaign's dispatch: the audience, as it is when the send starts, written as recipients
and enqueued for the sender (functions/campaign_dispatcher).

A dispatch belongs to one send of the campaign (its `dispatch_id`). It runs when the
campaign's schedule fires (`CampaignDue`, which first moves it scheduled -> sending), when a
user sends it now (CampaignSendRequested) and when a paused campaign resumes
(CampaignResumed). Every run is safe to repeat, after a crash anywhere or alongside a
duplicate delivery:

- Lease. A run first takes the lease on the campaign item (`dispatch_lease`, the run's id,
  and `dispatch_lease_until`, the end of its invocation): a conditional UpdateItem that
  needs the campaign `sending` with this dispatch id and the lease free, expired or its own.
  So two runs never snapshot at once; the one that finds the lease held raises `LeaseHeld`
  and Lambda retries it later. A run that stops in any way it can see releases the lease;
  one killed outright leaves a lease that expires when its invocation would have ended. The
  run's id is the Lambda request id, which Lambda keeps for the retries of an asynchronous
  invocation: the retry of a killed run owns its lease at once. (The lease saves work; it
  is not what makes a rerun correct: each recipient's Put is `attribute_not_exists` and is
  counted in its own transaction.)
- Snapshot. The segment's members (`Audience.members`), in chunks of `CHUNK` contacts: one
  consistent BatchGetItem of the chunk's recipient keys; one transaction of the missing
  recipients (each Put `attribute_not_exists`) and the campaign's `ADD count_audience :n`,
  which is conditioned on the lease, the dispatch id and the state `sending` (a pause or a
  cancel stops the snapshot at the next chunk, without another read); then every recipient
  of the chunk still `queued` is enqueued. So a rerun writes only the recipients missing
  and counts each once.
- Enqueue. Messages of up to `recipients.GROUP_SIZE` contact ids (`SendBatch`), sent ten
  at a time with SendMessageBatch once 500 recipients wait (a full batch), and every
  `CHECKPOINT_CHUNKS` chunks (495 recipients) whatever waits, the rest at the end; entries
  SQS refuses are sent again with backoff, and the run fails if they keep being refused. A
  run that stops early sends nothing more: the recipients it had not enqueued are still
  `queued`, and the next run enqueues them. The sender makes a recipient enqueued twice
  harmless.
- Checkpoint. After each of those flushes every recipient read so far is written and
  enqueued, so the next chunk's transaction also records where the audience's walk stands:
  `dispatch_position` (the source and page cursor of the chunk's first contact, and the
  transaction's time). A rerun starts reading the audience there, so a dispatch too long
  for one invocation goes on where it stopped instead of reading (and enqueueing) the
  audience again from its start; it reads again at most the one page before it. The
  segment is evaluated at the send's `sending_started_at` by every run.
- A rerun (the campaign already counted recipients when the run began) also enqueues the
  `queued` recipients the audience no longer yields (a contact who left the segment after
  an earlier run wrote it): one GSI3 Query of the campaign's `queued` recipients, page by
  page, after the snapshot, enqueueing the ones written since the checkpoint
  (`CHECKPOINT_MARGIN_S` before it, for clocks that differ).
- End. `dispatch_done = true` and the lease released, in one UpdateItem conditioned on the
  dispatch id and the lease. An audience of nobody fails the campaign (`EMPTY_AUDIENCE`);
  otherwise the campaign is finished if every recipient is already handled (each was
  skipped, say). A campaign whose send is already `dispatch_done` is not snapshotted again
  (a late duplicate would otherwise add contacts who joined the segment since).
- Resume. A campaign paused after its dispatch was done has every recipient written: the
  run enqueues its `queued` recipients (the GSI3 Query), no new snapshot. One paused before
  its dispatch was done gets the rest of its snapshot from the checkpoint, as a rerun
  would, and then every `queued` recipient is enqueued (the sender dropped the paused
  campaign's messages).
- Time. Before each chunk the run looks at the time its invocation has left; under
  `TIME_RESERVE_MS` it releases the lease, enqueues nothing more and raises `OutOfTime`:
  Lambda retries the invocation (2 retries, then the dispatcher's DLQ), and the retry goes
  on from the recipients already written. Raising rather than continuing elsewhere keeps
  the one path of every retry; 10,000 recipients take about 100 transactions and 20
  SendMessageBatch calls, far inside one invocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, NoReturn

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, StringConstraints

from crm_core import keys
from crm_core.campaigns import recipients
from crm_core.campaigns.audience import Audience, Position
from crm_core.campaigns.campaign_models import CampaignState, RecipientStatus, counter
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.dispatch_plan import (
    NotOurs,
    checkpoint_time,
    chunks,
    message_batches,
    position,
    position_item,
    refusal,
    send_time,
    unique,
)
from crm_core.campaigns.segment_store import SegmentStore
from crm_core.campaigns.segments import SegmentFilter
from crm_core.clock import now_iso
from crm_core.dynamo import Item, from_item
from crm_core.errors import Conflict, NotFound
from crm_core.events.envelope import Origin
from crm_core.invocation import OutOfTime
from crm_core.table import (
    MAX_BATCH_GET_KEYS,
    MAX_TRANSACTION_ITEMS,
    Table,
    TransactionCancelled,
    backoff,
)

PRODUCER = "campaign_dispatcher"
ORIGIN = Origin.system(PRODUCER)
# Contacts per chunk: their recipients' Puts and the campaign's counter in one transaction
# (100 operations at most), their keys in one BatchGetItem (100 keys at most).
CHUNK = min(MAX_TRANSACTION_ITEMS - 1, MAX_BATCH_GET_KEYS)
# SendMessageBatch: 10 entries at most, 256 KB for all of them together.
MESSAGES_PER_BATCH = 10
MAX_BATCH_BYTES = 256 * 1024
RECIPIENTS_PER_BATCH = MESSAGES_PER_BATCH * recipients.GROUP_SIZE
SQS_ATTEMPTS = 5
# Every this many chunks the run enqueues every recipient it wrote, and its next transaction
# records where the audience's walk stands (`dispatch_position`): a retry starts there.
CHECKPOINT_CHUNKS = 5
# A retry enqueues again the `queued` recipients written from this long before the
# checkpoint on: the ones it does not vouch for, and a margin for the clocks of two Lambda
# hosts (synchronised to well under a second).
CHECKPOINT_MARGIN_S = 5
# Stop while this much of the invocation is left: a chunk takes well under a second, and
# the lease must be released and the logs flushed before the timeout.
TIME_RESERVE_MS = 30_000
# A lease outlives its invocation by this much (clocks of two hosts may differ a little).
LEASE_MARGIN_MS = 5_000
EMPTY_AUDIENCE = "the segment had no contacts when the send started"
SEGMENT_GONE = "the segment was deleted before the send started"
_ABOVE_EVERY_ID = "\U0010ffff"

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CampaignDue(BaseModel):
    """The Input of a campaign's one-time schedule, as the Scheduler invokes the
    dispatcher with it (the campaigns function writes it when it schedules)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["campaign_due"]
    tenant_id: TenantId
    campaign_id: Id
    dispatch_id: Id


class EnqueueFailed(RuntimeError):
    """SQS kept refusing messages of the send queue."""


@dataclass(frozen=True)
class Run:
    """One invocation's run: its id (the lease's owner) and the time its invocation has left."""

    run_id: str
    time_left_ms: Callable[[], int]


@dataclass
class DispatchOutcome:
    """What a run did. `result`: dispatched, requeued, already_dispatched, ignored (not
    this campaign's current send), stopped (paused or cancelled meanwhile), or failed (the
    campaign failed: an empty audience, its segment deleted)."""

    campaign_id: str
    result: str
    reason: str | None = None
    audience: int = 0  # the campaign's recipients when the run ended
    written: int = 0  # recipients this run wrote
    enqueued: int = 0  # recipients this run enqueued
    messages: int = 0  # messages this run sent to the queue
    finished: bool = False  # this run moved the campaign to sent

    def summary(self) -> dict[str, Any]:
        return asdict(self)


class Dispatcher:
    def __init__(
        self,
        table: Table,
        sqs: Any,
        queue_url: str,
        logger: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.op = table.op
        self.sqs = sqs
        self.queue_url = queue_url
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.campaigns = CampaignStore(table)
        self.segments = SegmentStore(table)
        self.audience = Audience(table)

    # Triggers ---------------------------------------------------------------------------
    def due(self, due: CampaignDue, run: Run) -> DispatchOutcome:
        """The schedule fired: scheduled -> sending, then the dispatch. A stale schedule
        (rescheduled, sent now, cancelled) does nothing; a retry of this one (the campaign
        already sending this dispatch) goes on with the dispatch."""
        try:
            self.campaigns.start_scheduled(due.tenant_id, due.campaign_id, due.dispatch_id, ORIGIN)
        except NotFound:
            return self._ignored(due.campaign_id, "no such campaign")
        except Conflict as conflict:
            # Already sending (a retry or a duplicate firing), or not this send any more:
            # the lease's condition tells which.
            self.log.info("the schedule did not start the campaign", extra={"why": str(conflict)})
        return self.dispatch(due.tenant_id, due.campaign_id, due.dispatch_id, run)

    def dispatch(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str | None,
        run: Run,
        *,
        resume: bool = False,
    ) -> DispatchOutcome:
        """The dispatch of a sending campaign (CampaignSendRequested, a schedule), or the
        rest of it (`resume`: CampaignResumed)."""
        if not dispatch_id:
            return self._ignored(campaign_id, "the event names no send")
        try:
            campaign = self._take_lease(tenant_id, campaign_id, dispatch_id, run)
        except NotOurs as not_ours:
            return self._ignored(campaign_id, str(not_ours))
        held = True
        try:
            audience = int(campaign.get(counter("audience"), 0))
            if campaign.get("dispatch_done"):
                if not resume:
                    return DispatchOutcome(campaign_id, "already_dispatched", audience=audience)
                outcome = DispatchOutcome(campaign_id, "requeued", audience=audience)
                pending = self._sweep(tenant_id, campaign_id, dispatch_id, run, set(), outcome)
                self._enqueue(tenant_id, campaign_id, dispatch_id, pending, outcome)
            else:
                outcome = DispatchOutcome(campaign_id, "dispatched")
                try:
                    segment = self.segments.load(tenant_id, campaign["segment_id"])
                except NotFound:
                    return self._fail(tenant_id, campaign_id, dispatch_id, SEGMENT_GONE, outcome)
                members = self.audience.placed_members(
                    tenant_id,
                    SegmentFilter.model_validate(segment["filter"]),
                    send_time(campaign, self.clock),
                    position(campaign),
                )
                try:
                    self._snapshot(
                        campaign,
                        members,
                        dispatch_id,
                        run,
                        outcome,
                        rerun=audience > 0,
                        resume=resume,
                    )
                    done = self._done(tenant_id, campaign_id, dispatch_id, run)
                except NotOurs as stopped:
                    outcome.result, outcome.reason = "stopped", str(stopped)
                    self.log.info("dispatch stopped", extra=outcome.summary())
                    return outcome
                held = False
                outcome.audience = int(done.get(counter("audience"), 0))
                if outcome.audience == 0:
                    return self._fail(tenant_id, campaign_id, dispatch_id, EMPTY_AUDIENCE, outcome)
            outcome.finished = self.campaigns.finish_if_complete(tenant_id, campaign_id, ORIGIN)
            return outcome
        finally:
            if held:
                self._release(tenant_id, campaign_id, run)

    # The snapshot -----------------------------------------------------------------------
    def _snapshot(
        self,
        campaign: Item,
        members: Iterable[tuple[Item, Position]],
        dispatch_id: str,
        run: Run,
        outcome: DispatchOutcome,
        *,
        rerun: bool,
        resume: bool = False,
    ) -> None:
        tenant_id, campaign_id = campaign["tenant_id"], campaign["id"]
        enqueued: set[str] = set()
        pending: list[str] = []
        checkpoint_due = False
        for number, chunk in enumerate(chunks(unique(members), CHUNK), start=1):
            self._check_time(run, outcome)
            # Every recipient before this chunk's page is written and enqueued: a retry may
            # start reading there (and enqueue that page's earlier recipients again).
            position = chunk[0][1] if checkpoint_due else None
            contacts = [contact for contact, _ in chunk]
            queued = self._write_chunk(
                tenant_id, campaign_id, dispatch_id, run, contacts, outcome, position
            )
            checkpoint_due = False
            pending += queued
            enqueued.update(queued)
            pending = self._enqueue_full(tenant_id, campaign_id, dispatch_id, pending, outcome)
            if number % CHECKPOINT_CHUNKS == 0:
                self._enqueue(tenant_id, campaign_id, dispatch_id, pending, outcome)
                pending, checkpoint_due = [], True
        if rerun:
            # An earlier run wrote recipients after its last checkpoint: some may have left
            # the segment since, still queued and perhaps never enqueued. After a pause,
            # every `queued` one: the sender dropped their messages while paused.
            since = None if resume else checkpoint_time(campaign, CHECKPOINT_MARGIN_S)
            pending += self._sweep(
                tenant_id, campaign_id, dispatch_id, run, enqueued, outcome, since
            )
        self._enqueue(tenant_id, campaign_id, dispatch_id, pending, outcome)

    def _write_chunk(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        run: Run,
        contacts: list[Item],
        outcome: DispatchOutcome,
        position: Position | None = None,
    ) -> list[str]:
        """Write the chunk's missing recipients (counted), and the checkpoint `position`
        when given; the ids of the chunk's `queued` recipients."""
        by_id = {c["id"]: c for c in contacts}
        recipient_keys = [keys.recipient(tenant_id, campaign_id, i) for i in by_id]
        for attempt in range(1, 4):
            found = self.table.batch_get(recipient_keys, consistent=True)
            status = {r["contact_id"]: r.get("status") for r in found}
            missing = [i for i in by_id if i not in status]
            now = now_iso()
            if not missing:
                if position is not None:  # a rerun over written recipients
                    self._update(
                        self._checkpoint(tenant_id, campaign_id, dispatch_id, run, position, now),
                        dispatch_id,
                        run,
                    )
                break
            puts = [
                self.op.put(
                    recipients.new_recipient(tenant_id, campaign_id, dispatch_id, by_id[i], now),
                    "attribute_not_exists(PK)",
                )
                for i in missing
            ]
            count = self.op.update(
                keys.campaign(tenant_id, campaign_id),
                "ADD #count :n" + (" SET dispatch_position = :p" if position else ""),
                "dispatch_id = :d AND dispatch_lease = :me AND #state = :sending",
                {"#count": counter("audience"), "#state": "state"},
                n=len(missing),
                d=dispatch_id,
                me=run.run_id,
                sending=CampaignState.SENDING.value,
                **({"p": position_item(position, now)} if position else {}),
            )
            count["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            try:
                self.table.transact([*puts, count])
            except TransactionCancelled as cancelled:
                if cancelled.failed(len(puts)):
                    self._why_not(cancelled.items[len(puts)], dispatch_id, run)
                # Some of them were written meanwhile (a run whose lease we took over after
                # it expired, still finishing a chunk): read the chunk again.
                backoff(attempt)
                continue
            outcome.written += len(missing)
            status.update(dict.fromkeys(missing, RecipientStatus.QUEUED.value))
            break
        else:
            raise RuntimeError("the chunk's recipients kept changing while being written")
        return [i for i in by_id if status[i] == RecipientStatus.QUEUED.value]

    def _checkpoint(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        run: Run,
        position: Position,
        now: str,
    ) -> dict[str, Any]:
        return self.op.update(
            keys.campaign(tenant_id, campaign_id),
            "SET dispatch_position = :p",
            "dispatch_id = :d AND dispatch_lease = :me AND #state = :sending",
            {"#state": "state"},
            p=position_item(position, now),
            d=dispatch_id,
            me=run.run_id,
            sending=CampaignState.SENDING.value,
        )

    def _sweep(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        run: Run,
        enqueued: set[str],
        outcome: DispatchOutcome,
        since: str | None = None,
    ) -> list[str]:
        """Enqueue the campaign's `queued` recipients not in `enqueued` and written at or
        after `since` (every one when None), GSI3 page by page; the ones left to enqueue
        (fewer than a full batch)."""
        pending: list[str] = []
        partition = keys.recipients_in_status(tenant_id, campaign_id, RecipientStatus.QUEUED.value)
        queued = self.table.query_all("GSI3", partition, sort_below=_ABOVE_EVERY_ID)
        for seen, item in enumerate(queued, start=1):
            if seen % RECIPIENTS_PER_BATCH == 0:
                self._check_time(run, outcome)
            if since is not None and str(item.get("queued_at", "")) < since:
                continue  # enqueued before the checkpoint
            if item["contact_id"] not in enqueued:
                pending.append(item["contact_id"])
                pending = self._enqueue_full(tenant_id, campaign_id, dispatch_id, pending, outcome)
        return pending

    # The send queue ---------------------------------------------------------------------
    def _enqueue_full(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        pending: list[str],
        outcome: DispatchOutcome,
    ) -> list[str]:
        """Send the full batches of `pending`; what is left."""
        while len(pending) >= RECIPIENTS_PER_BATCH:
            batch, pending = pending[:RECIPIENTS_PER_BATCH], pending[RECIPIENTS_PER_BATCH:]
            self._enqueue(tenant_id, campaign_id, dispatch_id, batch, outcome)
        return pending

    def _enqueue(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        contact_ids: list[str],
        outcome: DispatchOutcome,
    ) -> None:
        batches = message_batches(
            tenant_id,
            campaign_id,
            dispatch_id,
            contact_ids,
            per_batch=MESSAGES_PER_BATCH,
            max_bytes=MAX_BATCH_BYTES,
        )
        for batch in batches:
            self._send_batch(batch.entries)
            outcome.messages += len(batch.entries)
            outcome.enqueued += batch.recipients

    def _send_batch(self, entries: list[dict[str, str]]) -> None:
        pending = entries
        for attempt in range(1, SQS_ATTEMPTS + 1):
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            failed: list[dict[str, Any]] = response.get("Failed") or []
            if not failed:
                return
            codes = sorted({str(f.get("Code")) for f in failed})
            if any(f.get("SenderFault") for f in failed):
                raise EnqueueFailed(f"SQS refused {len(failed)} messages as invalid: {codes}")
            by_id = {e["Id"]: e for e in pending}
            pending = [by_id[f["Id"]] for f in failed]
            self.log.warning(
                "SQS refused messages; sending them again",
                extra={"refused": len(pending), "codes": codes, "attempt": attempt},
            )
            if attempt < SQS_ATTEMPTS:
                backoff(attempt)
        raise EnqueueFailed(f"SQS refused {len(pending)} messages {SQS_ATTEMPTS} times")

    # The lease --------------------------------------------------------------------------
    def _take_lease(self, tenant_id: str, campaign_id: str, dispatch_id: str, run: Run) -> Item:
        """The campaign, as the lease left it; `NotOurs` if it is not sending this
        dispatch, `LeaseHeld` if another run holds the lease."""
        now_ms = int(self.clock() * 1000)
        until = now_ms + max(run.time_left_ms(), 0) + LEASE_MARGIN_MS
        update = self.op.update(
            keys.campaign(tenant_id, campaign_id),
            "SET dispatch_lease = :me, dispatch_lease_until = :until",
            "dispatch_id = :d AND #state = :sending AND (attribute_not_exists(dispatch_lease)"
            " OR dispatch_lease = :me OR dispatch_lease_until < :now)",
            {"#state": "state"},
            me=run.run_id,
            until=until,
            now=now_ms,
            d=dispatch_id,
            sending=CampaignState.SENDING.value,
        )
        return self._update(update, dispatch_id, run)

    def _done(self, tenant_id: str, campaign_id: str, dispatch_id: str, run: Run) -> Item:
        """Every recipient written and enqueued: `dispatch_done`, and the lease released."""
        update = self.op.update(
            keys.campaign(tenant_id, campaign_id),
            "SET dispatch_done = :done REMOVE dispatch_lease, dispatch_lease_until",
            "dispatch_id = :d AND dispatch_lease = :me",
            None,
            done=True,
            d=dispatch_id,
            me=run.run_id,
        )
        return self._update(update, dispatch_id, run)

    def _release(self, tenant_id: str, campaign_id: str, run: Run) -> None:
        """Give the lease up (a run that stops early), if it is still ours. Best effort:
        a lease not released expires with its invocation."""
        update = self.op.update(
            keys.campaign(tenant_id, campaign_id),
            "REMOVE dispatch_lease, dispatch_lease_until",
            "dispatch_lease = :me",
            None,
            me=run.run_id,
        )
        try:
            self.table.update(update)
        except Exception as exc:  # never hide the error that stopped the run
            self.log.warning("the lease was not released", extra={"error": repr(exc)})

    def _update(self, update: dict[str, Any], dispatch_id: str, run: Run) -> Item:
        """One conditional UpdateItem of the campaign: the item after it, or why not."""
        body = {
            **update["Update"],
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            response = self.table.client.update_item(**body)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            self._why_not(from_item(old) if old else None, dispatch_id, run)
        return from_item(response["Attributes"])

    def _why_not(self, campaign: Item | None, dispatch_id: str, run: Run) -> NoReturn:
        """Raise what a failed condition on the campaign means."""
        raise refusal(campaign, dispatch_id, run.run_id)

    # Endings ----------------------------------------------------------------------------
    def _check_time(self, run: Run, outcome: DispatchOutcome) -> None:
        left = run.time_left_ms()
        if left < TIME_RESERVE_MS:
            self.log.warning("out of time: the retry goes on", extra=outcome.summary())
            raise OutOfTime(
                f"{left} ms left after writing {outcome.written} and enqueueing "
                f"{outcome.enqueued} recipients"
            )

    def _fail(
        self,
        tenant_id: str,
        campaign_id: str,
        dispatch_id: str,
        reason: str,
        outcome: DispatchOutcome,
    ) -> DispatchOutcome:
        try:
            self.campaigns.fail(tenant_id, campaign_id, dispatch_id, reason)
        except Conflict as conflict:  # paused or cancelled meanwhile: it stays so
            self.log.info("the campaign was not failed", extra={"why": str(conflict)})
        outcome.result, outcome.reason = "failed", reason
        return outcome

    def _ignored(self, campaign_id: str, reason: str) -> DispatchOutcome:
        self.log.info("nothing to dispatch", extra={"campaign_id": campaign_id, "why": reason})
        return DispatchOutcome(campaign_id, "ignored", reason=reason)
