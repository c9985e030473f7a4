"""Re-score jobs as the table keeps them: one per model version (or asked for), with the
cursor a run resumes from and its counts (`rescore.py` runs them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import NotFound
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.events.scoring import ScoringJobProgressed, ScoringJobProgressedData
from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.table import Op, Page, Table, TransactionCancelled

JOB_ITEM = "scoring_job"
JOB_CLAIM_ITEM = "scoring_job_claim"


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
        """The job of model `version`: a new one, or the one a first delivery started."""
        claim = keys.scoring_job_of_version(tenant_id, version)
        job = self._new(tenant_id, version, JobScope.STALE, origin)
        try:
            self.table.transact(
                [
                    self.op.put(
                        {**claim, "type": JOB_CLAIM_ITEM, "job_id": job["id"]},
                        "attribute_not_exists(PK)",
                    ),
                    self.op.put(job, "attribute_not_exists(PK)"),
                ]
            )
        except TransactionCancelled:
            existing = self.table.get(claim)
            if existing is None:
                raise
            return str(existing["job_id"])
        return str(job["id"])

    def request(self, tenant_id: str, version: int, scope: JobScope, origin: Origin) -> ScoringJob:
        """A job asked for by a person: written with the event that starts its first run."""
        job = self._new(tenant_id, version, scope, origin)
        self.table.transact(
            [self.op.put(job, "attribute_not_exists(PK)"), announcement(self.op, job, origin)]
        )
        return to_job(job)

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
