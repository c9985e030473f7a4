"""Re-score jobs as the table keeps them: one per model version (or asked for), with the
cursor a run resumes from and its counts (`rescore.py` runs them).

One job per tenant and scope runs at a time (PRODUCT.md, "Background jobs a user can
start"): a slot item per scope names the job that holds it. Starting a job takes the slot
in the transaction that writes the job, on the condition that the slot still names the
holder it was read with, so of two concurrent starts one wins and the other answers the
winner. A holder keeps the slot while it runs, moves and runs the current model; a holder
that ended, stalled (its item not moved for STALLED_AFTER: its run ended in a DLQ) or runs
an older model gives it up, and if still `running` it is superseded in that transaction
(on the condition that it has not moved since it was read), so a late run of it stops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import NotFound, TooManyRequests
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.events.scoring import ScoringJobProgressed, ScoringJobProgressedData
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.table import Op, Page, Table, TransactionCancelled

JOB_ITEM = "scoring_job"
JOB_CLAIM_ITEM = "scoring_job_claim"
JOB_SLOT_ITEM = "scoring_job_slot"
# A run lasts at most lead_scoring's timeout (300 s) and moves the job's item after every
# page; Lambda retries a failed run twice, about 1 and 2 minutes later; the next run follows
# within seconds (its event goes through the outbox). A running job whose item has not moved
# for longer than all of that (3 x 300 s + 3 min = 18 min) lost its run: it ended in the DLQ.
# tests/iac checks this against the template's Timeout and MaximumRetryAttempts.
STALLED_AFTER = timedelta(minutes=30)
# Starts that lose the slot to a concurrent start read it again this many times.
_SLOT_ATTEMPTS = 4
Operations = list[dict[str, Any]]  # parts of one TransactWriteItems


class JobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"


class JobScope(StrEnum):
    STALE = "stale"  # contacts scored with another version, or never
    ALL = "all"  # every contact, rebuilt from its history


class JobRequest(BaseModel):
    """POST /scoring/jobs: re-score with the current model now."""

    model_config = INPUT_MODEL

    scope: JobScope = Field(
        default=JobScope.STALE,
        description="stale: contacts not scored with the current model version (after an "
        "upgrade, say); all: every contact, rebuilt from its activities.",
    )


class ScoringJob(BaseModel):
    """A re-score of the tenant's contacts with one model version."""

    model_config = OUTPUT_MODEL

    id: str
    model_version: int
    scope: JobScope
    status: JobStatus
    contacts_seen: int = Field(description="Contacts the job has looked at so far.")
    contacts_rescored: int = Field(description="Of those, the ones whose score it rebuilt.")
    runs: int = Field(description="How many runs it took so far (each resumes the last).")
    started_at: str
    updated_at: str
    finished_at: str | None = None
    superseded_by: int | None = Field(
        default=None, description="The newer model version whose job took over."
    )


class JobPage(BaseModel):
    model_config = OUTPUT_MODEL

    items: list[ScoringJob]
    next_cursor: str | None


# Stored names: "status" and "cursor" are reserved words of DynamoDB's expressions.
STATUS, RESUME = "job_status", "resume_from"
START = "start"  # the resume_from of a job that has not taken a page yet


def to_job(item: Item) -> ScoringJob:
    values = {k: item[k] for k in ScoringJob.model_fields if k in item}
    return ScoringJob.model_validate({**values, "status": item[STATUS]})


class JobStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def get(self, tenant_id: str, job_id: str) -> ScoringJob:
        item = self.table.get(keys.scoring_job(tenant_id, job_id), consistent=False)
        if item is None or item.get("type") != JOB_ITEM:
            raise NotFound("no such scoring job")
        return to_job(item)

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (job ids are ULIDs)."""
        listing = ListQuery("scoring-jobs", keys.scoring_model(tenant_id)["PK"])
        return self.table.query(listing, limit, cursor, sort_prefix="JOB#")

    def start(self, tenant_id: str, version: int, origin: Origin) -> str:
        """The job of model `version` (scope `stale`): a new one, the one a first delivery
        started, or the stale job already running with this (or a newer) version."""
        claim = keys.scoring_job_of_version(tenant_id, version)
        for _ in range(_SLOT_ATTEMPTS):
            slot, holder = self._holder(tenant_id, JobScope.STALE)
            if holder is not None and _holds(holder, version):
                # Join it, on the condition that it still holds the slot.
                slot_key = keys.scoring_job_slot(tenant_id, JobScope.STALE.value)
                still = self.op.check(slot_key, "job_id = :held", held=holder["id"])
                ops = [self._claim(claim, holder["id"]), still]
                job_id = holder["id"]
            else:
                job = self._new(tenant_id, version, JobScope.STALE, origin)
                ops = [
                    self._claim(claim, job["id"]),
                    *self._take(tenant_id, JobScope.STALE, slot, holder, job, origin),
                    self.op.put(job, "attribute_not_exists(PK)"),
                ]
                job_id = job["id"]
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                existing = self.table.get(claim)
                if existing is not None:
                    return str(existing["job_id"])
                continue  # the slot moved meanwhile: read it again
            return str(job_id)
        raise TooManyRequests("re-score jobs are being started right now; try again")

    def request(
        self, tenant_id: str, version: int, scope: JobScope, origin: Origin
    ) -> tuple[ScoringJob, bool]:
        """A job asked for by a person, and whether it was started now: the scope's running
        job when there is one, else a new job written with the event that starts its first
        run."""
        for _ in range(_SLOT_ATTEMPTS):
            slot, holder = self._holder(tenant_id, scope)
            if holder is not None and _holds(holder, version):
                return to_job(holder), False
            job = self._new(tenant_id, version, scope, origin)
            ops = [
                *self._take(tenant_id, scope, slot, holder, job, origin),
                self.op.put(job, "attribute_not_exists(PK)"),
                announcement(self.op, job, origin),
            ]
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                continue  # another start took the slot: answer its job
            return to_job(job), True
        raise TooManyRequests("re-score jobs are being started right now; try again")

    # The slot of a scope ---------------------------------------------------------------------
    def _holder(self, tenant_id: str, scope: JobScope) -> tuple[Item | None, Item | None]:
        """The scope's slot and the job it names (None, None: never used)."""
        slot = self.table.get(keys.scoring_job_slot(tenant_id, scope.value))
        if slot is None:
            return None, None
        return slot, self.table.get(keys.scoring_job(tenant_id, slot["job_id"]))

    def _take(
        self,
        tenant_id: str,
        scope: JobScope,
        slot: Item | None,
        holder: Item | None,
        job: Item,
        origin: Origin,
    ) -> Operations:
        """The transaction parts that give the slot to `job`, superseding a holder still
        marked running (stalled, or of an older model)."""
        item = {
            **keys.scoring_job_slot(tenant_id, scope.value),
            "type": JOB_SLOT_ITEM,
            "scope": scope.value,
            "job_id": job["id"],
        }
        if slot is None:
            ops = [self.op.put(item, "attribute_not_exists(PK)")]
        else:
            ops = [self.op.put(item, "job_id = :held", held=slot["job_id"])]
        if holder is not None and holder[STATUS] == JobStatus.RUNNING:
            now = job["updated_at"]
            ended = {
                **holder,
                STATUS: JobStatus.SUPERSEDED.value,
                "superseded_by": job["model_version"],
                "updated_at": now,
                "finished_at": now,
            }
            condition = f"{STATUS} = :running AND updated_at = :seen"
            values = {"running": JobStatus.RUNNING.value, "seen": holder["updated_at"]}
            ops += [self.op.put(ended, condition, **values), announcement(self.op, ended, origin)]
        return ops

    def _claim(self, claim: dict[str, str], job_id: str) -> dict[str, Any]:
        item = {**claim, "type": JOB_CLAIM_ITEM, "job_id": job_id}
        return self.op.put(item, "attribute_not_exists(PK)")

    def _new(self, tenant_id: str, version: int, scope: JobScope, origin: Origin) -> Item:
        job_id, now = new_ulid(), now_iso()
        return {
            **keys.scoring_job(tenant_id, job_id),
            "type": JOB_ITEM,
            "id": job_id,
            "tenant_id": tenant_id,
            "model_version": version,
            "scope": scope.value,
            STATUS: JobStatus.RUNNING.value,
            "contacts_seen": 0,
            "contacts_rescored": 0,
            "runs": 0,
            RESUME: START,
            "started_at": now,
            "updated_at": now,
            "started_by": origin.actor.id,
        }


def _holds(holder: Item, version: int, now: datetime | None = None) -> bool:
    """Whether a job keeps its scope's slot against a start with model `version`."""
    if holder[STATUS] != JobStatus.RUNNING or holder["model_version"] < version:
        return False
    moved = datetime.fromisoformat(holder["updated_at"])
    return (now or datetime.now(UTC)) - moved < STALLED_AFTER


def announcement(op: Op, job: Item, origin: Origin) -> dict[str, Any]:
    """ScoringJobProgressed for the job as it is, in the job's partition's outbox."""
    event = ScoringJobProgressed.create(
        job["tenant_id"],
        origin,
        ScoringJobProgressedData(
            job_id=job["id"],
            model_version=job["model_version"],
            status=job[STATUS],
            contacts_seen=job["contacts_seen"],
            contacts_rescored=job["contacts_rescored"],
        ),
        job["updated_at"],
    )
    return outbox_put(op, keys.scoring_job(job["tenant_id"], job["id"]), event)


def unmoved(job: Item) -> tuple[str, dict[str, Any]]:
    """The condition that the job is still where `job` found it, running."""
    return f"{RESUME} = :c AND {STATUS} = :running", {"c": job[RESUME], "running": "running"}
