"""Re-scoring a tenant after its model changed: a job that resumes wherever it stopped.

ScoringModelChanged starts one job per model version (a claim on the version makes a
second delivery find the first job). A job walks the tenant's contacts by update time,
oldest first (GSI1, tenant-scoped Queries, never a Scan): a contact changed meanwhile moves
ahead of the cursor and is still reached. Each contact not yet scored with the job's
version is rebuilt from its history (`Scorer.rebuild`). After each page the job's item
takes the new cursor and counts, on the cursor it started from, so two runners of one job
never both advance it, and a crash loses at most the page in hand (rebuilding is absolute:
doing a contact twice changes nothing). A run stops when its time is nearly up; its last
write puts ScoringJobProgressed in the outbox in the same transaction, and the next run
starts from that event. A newer model supersedes a running job: the newer job covers all.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import NotFound
from crm_core.events.envelope import Origin
from crm_core.events.scoring import ScoreCause
from crm_core.pagination import ListQuery
from crm_core.scores.state import ScoreState
from crm_core.scoring.jobs import (
    JOB_ITEM,
    RESUME,
    START,
    STATUS,
    JobScope,
    JobStatus,
    announcement,
    unmoved,
)
from crm_core.scoring.scorer import Scorer
from crm_core.table import Page, Table, TransactionCancelled

PAGE_SIZE = 25
# A run stops taking pages when less time than this is left (a page of rebuilds must fit).
STOP_MARGIN_MS = 20_000


@dataclass(frozen=True)
class RunResult:
    job_id: str
    status: JobStatus
    seen: int
    rescored: int
    stopped_by_another: bool = False


class Rescorer:
    """Runs jobs: `run` takes pages until the job ends or `time_left_ms` runs low."""

    def __init__(self, table: Table, scorer: Scorer, page_size: int = PAGE_SIZE) -> None:
        self.table = table
        self.op = table.op
        self.scorer = scorer
        self.page_size = page_size

    def run(
        self, tenant_id: str, job_id: str, time_left_ms: Callable[[], int], origin: Origin
    ) -> RunResult:
        seen = rescored = 0
        job = self._job(tenant_id, job_id)
        first = True
        while True:
            if job[STATUS] != JobStatus.RUNNING:
                return RunResult(job_id, JobStatus(job[STATUS]), seen, rescored)
            current = self._current_version(tenant_id)
            if current > job["model_version"]:
                self._supersede(job, origin, current)
                return RunResult(job_id, JobStatus.SUPERSEDED, seen, rescored)
            resume = job[RESUME]
            page = self._page(tenant_id, None if resume == START else resume)
            page_rescored = 0
            everyone = job.get("scope") == JobScope.ALL
            for item in page.items:
                if not everyone and ScoreState.of(item).model_version == job["model_version"]:
                    continue
                cause = ScoreCause(detail_type="Rescored", event_id=None)
                if self.scorer.rebuild(tenant_id, item["id"], cause, origin) is not None:
                    page_rescored += 1
            seen, rescored = seen + len(page.items), rescored + page_rescored
            done = page.next_cursor is None
            pausing = not done and time_left_ms() < STOP_MARGIN_MS
            status = JobStatus.DONE if done else JobStatus.RUNNING
            advanced = self._advance(
                job,
                page.next_cursor or START,
                len(page.items),
                page_rescored,
                status,
                origin,
                announce=done or pausing,
                new_run=first,
            )
            first = False
            if advanced is None:
                return RunResult(job_id, JobStatus.RUNNING, seen, rescored, stopped_by_another=True)
            job = advanced
            if done or pausing:
                return RunResult(job_id, status, seen, rescored)

    # The job's item ----------------------------------------------------------------------
    def _job(self, tenant_id: str, job_id: str) -> Item:
        item = self.table.get(keys.scoring_job(tenant_id, job_id))
        if item is None or item.get("type") != JOB_ITEM:
            raise NotFound(f"no scoring job {job_id}")
        return item

    def _current_version(self, tenant_id: str) -> int:
        item = self.table.get(keys.scoring_model(tenant_id))
        return int(item["version"]) if item else 0

    def _page(self, tenant_id: str, cursor: str | None) -> Page:
        listing = ListQuery("contacts-by-updated", keys.contacts_by_updated(tenant_id), "GSI1")
        return self.table.query(listing, self.page_size, cursor, newest_first=False)

    def _advance(
        self,
        job: Item,
        cursor: str,
        seen: int,
        rescored: int,
        status: JobStatus,
        origin: Origin,
        *,
        announce: bool,
        new_run: bool,
    ) -> Item | None:
        """The job's item moved on from the cursor it had (None: another runner moved it)."""
        now = now_iso()
        new = {
            **job,
            RESUME: cursor,
            "contacts_seen": job["contacts_seen"] + seen,
            "contacts_rescored": job["contacts_rescored"] + rescored,
            "runs": job["runs"] + (1 if new_run else 0),
            STATUS: status.value,
            "updated_at": now,
        }
        if status != JobStatus.RUNNING:
            new["finished_at"] = now
        condition, values = unmoved(job)
        ops = [self.op.put(new, condition, **values)]
        if announce:
            ops.append(self._event(new, origin))
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            return None
        return new

    def _supersede(self, job: Item, origin: Origin, newer: int) -> None:
        now = now_iso()
        new = {
            **job,
            STATUS: JobStatus.SUPERSEDED.value,
            "superseded_by": newer,
            "updated_at": now,
            "finished_at": now,
        }
        condition, values = unmoved(job)
        with suppress(TransactionCancelled):  # another runner got there first
            self.table.transact([self.op.put(new, condition, **values), self._event(new, origin)])

    def _event(self, job: Item, origin: Origin) -> dict[str, Any]:
        return announcement(self.op, job, origin)
