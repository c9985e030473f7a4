"""Who is in a segment now: candidates from the one index that narrows the filter most,
each then checked against the whole filter. Tenant-scoped Queries only, never a Scan.

Which index reads the candidates, first that applies (docs/data-model.md, "Segments"):
1. `company_id`: GSI4, the company's contacts;
2. `owner_id`: GSI3, the owner's contacts;
3. `tags.all`: the first tag's members (base table), then BatchGetItem of their contacts;
4. `lifecycle_stage`, `min_score` or `max_score`: GSI2, each stage's score ranks (every
   stage when only a score is given), each Query bounded below by `min_score` now;
5. `tags.any`: each tag's members, once each;
6. otherwise GSI1, every contact of the tenant.
The filter is checked whole on each candidate, so the answer never depends on the index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from crm_core import keys
from crm_core.campaigns.segments import SegmentFilter
from crm_core.dynamo import Item
from crm_core.pagination import ListQuery
from crm_core.records.contact import LifecycleStage
from crm_core.scores.ranking import lowest_key
from crm_core.scores.state import parse_rank, ranks_in
from crm_core.table import Table

PAGE = 200  # items per Query page (each page is also under DynamoDB's 1 MB)
SAMPLE_SIZE = 10
# A preview stops counting after reading this many candidates (and says it is a minimum).
PREVIEW_READ_BUDGET = 50_000
# ... or after this long: the request must answer within the function's timeout (10 s) and
# API Gateway's 29 s, however slowly the pages come. Checked before each page is read, not
# at each candidate: a walk over many empty partitions reads pages but finds no candidate.
# A send's readiness check (`is_empty`) has the same budgets.
PREVIEW_TIME_BUDGET_S = 5.0
_TOP = "Z"  # above every GSI2 sort key


class TimeBudget:
    """Time to read pages in, from now: `spent()` once it is over (and ever after), so a
    walk that stopped for it can be told from one that read everything."""

    def __init__(self, seconds: float, timer: Callable[[], float] = time.monotonic) -> None:
        self.timer = timer
        self.ends = timer() + seconds
        self.ran_out = False

    def spent(self) -> bool:
        if not self.ran_out and self.timer() >= self.ends:
            self.ran_out = True
        return self.ran_out


@dataclass(frozen=True)
class Position:
    """Where a walk of a segment's candidates can start again: a source (one partition of an
    index, or a tag's) and the cursor of one of its pages (None: its first page)."""

    source: str
    cursor: str | None = None


@dataclass(frozen=True)
class _Source:
    """One partition the candidates come from, read one page per call: (items, next cursor)."""

    name: str
    page: Callable[[str | None], tuple[list[Item], str | None]]


@dataclass(frozen=True)
class Preview:
    count: int
    complete: bool
    sample: list[Item]
    index: str
    read: int


class Audience:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock

    @staticmethod
    def index_for(segment: SegmentFilter) -> str:
        """The name of the index that reads the candidates of `segment`."""
        if segment.company_id:
            return "company"
        if segment.owner_id:
            return "owner"
        if segment.tags and segment.tags.all:
            return "tags-all"
        if (
            segment.lifecycle_stage
            or segment.min_score is not None
            or segment.max_score is not None
        ):
            return "stage-score"
        if segment.tags and segment.tags.any:
            return "tags-any"
        return "all-contacts"

    def members(
        self, tenant_id: str, segment: SegmentFilter, now: float | None = None
    ) -> Iterator[Item]:
        """Every contact in the segment at `now`, in no particular order; once each, unless
        it changed while being read (then perhaps twice)."""
        moment = self.clock() if now is None else now
        for item, _ in self.placed_members(tenant_id, segment, moment):
            yield item

    def placed_members(
        self, tenant_id: str, segment: SegmentFilter, now: float, start: Position | None = None
    ) -> Iterator[tuple[Item, Position]]:
        """The members with their positions (`walk`), from `start` on."""
        for item, position in self.walk(tenant_id, segment, now, start):
            if segment.matches(item, now):
                yield item, position

    def is_empty(self, tenant_id: str, segment: SegmentFilter) -> bool:
        """No contact in the segment now: stops at the first member (a send's readiness
        check), or at the preview's read or time budget (then it says not empty: the
        dispatcher, which reads it all, finds out)."""
        now = self.clock()
        budget = TimeBudget(PREVIEW_TIME_BUDGET_S)
        for read, item in enumerate(self.candidates(tenant_id, segment, now, budget), start=1):
            if segment.matches(item, now) or read >= PREVIEW_READ_BUDGET:
                return False
        return not budget.ran_out

    def preview(self, tenant_id: str, segment: SegmentFilter) -> Preview:
        now = self.clock()
        budget = TimeBudget(PREVIEW_TIME_BUDGET_S)
        count = read = 0
        sample: list[Item] = []
        complete = True
        for item in self.candidates(tenant_id, segment, now, budget):
            read += 1
            if segment.matches(item, now):
                count += 1
                if len(sample) < SAMPLE_SIZE:
                    sample.append(item)
            if read >= PREVIEW_READ_BUDGET:
                complete = False
                break
        complete = complete and not budget.ran_out
        return Preview(count, complete, sample, self.index_for(segment), read)

    # Candidates ---------------------------------------------------------------------------
    def candidates(
        self,
        tenant_id: str,
        segment: SegmentFilter,
        now: float,
        budget: TimeBudget | None = None,
    ) -> Iterator[Item]:
        """Contacts that may be in the segment (a superset), once each unless changed
        meanwhile (`walk`)."""
        for item, _ in self.walk(tenant_id, segment, now, budget=budget):
            yield item

    def walk(
        self,
        tenant_id: str,
        segment: SegmentFilter,
        now: float,
        start: Position | None = None,
        budget: TimeBudget | None = None,
    ) -> Iterator[tuple[Item, Position]]:
        """The candidates, each with the position of its page: a walk started at that
        position reads the item again (with the rest of its page), then what follows.

        A `start` from another walk of the same segment goes on from there; one whose source
        the segment no longer reads (a new scoring model version added a rank, say) starts
        from the beginning. Partitions are read oldest change (or lowest score) first: a
        contact changed during the walk moves towards the end, so it is read, perhaps twice,
        rather than missed.

        With a `budget`, no page is read once it is spent: the walk just ends (the budget
        says it ran out).
        """
        sources = self._sources(tenant_id, segment, now)
        names = [source.name for source in sources]
        first, cursor = 0, None
        if start is not None and start.source in names:
            first, cursor = names.index(start.source), start.cursor
        for source in sources[first:]:
            while True:
                if budget is not None and budget.spent():
                    return
                here = Position(source.name, cursor)
                items, cursor = source.page(cursor)
                for item in items:
                    yield item, here
                if cursor is None:
                    break

    def _sources(self, tenant_id: str, segment: SegmentFilter, now: float) -> list[_Source]:
        index = self.index_for(segment)
        tags = segment.tags
        if index == "company" and segment.company_id:
            partition = keys.contacts_by_company(tenant_id, segment.company_id)
            return [self._listed(ListQuery("segment", partition, "GSI4"))]
        if index == "owner" and segment.owner_id:
            partition = keys.contacts_by_owner(tenant_id, segment.owner_id)
            return [self._listed(ListQuery("segment", partition, "GSI3"))]
        if index == "tags-all" and tags and tags.all:
            return self._tagged(tenant_id, tags.all[:1])
        if index == "stage-score":
            return self._ranked(tenant_id, segment, now)
        if index == "tags-any" and tags and tags.any:
            return self._tagged(tenant_id, tags.any)
        partition = keys.contacts_by_updated(tenant_id)
        return [self._listed(ListQuery("segment", partition, "GSI1"))]

    def _listed(self, listing: ListQuery, **query: Any) -> _Source:
        """A partition of contacts (an index's), lowest sort key first."""

        def page(cursor: str | None) -> tuple[list[Item], str | None]:
            found = self.table.query(listing, PAGE, cursor, newest_first=False, **query)
            return found.items, found.next_cursor

        return _Source(f"{listing.index}:{listing.partition}", page)

    def _tagged(self, tenant_id: str, tags: list[str]) -> list[_Source]:
        """Each tag's members (by contact id), their contacts read with BatchGetItem; a
        contact with two of the tags is read once in a walk."""
        seen: set[str] = set()

        def source(tag: str) -> _Source:
            listing = ListQuery("segment", keys.tag_partition(tenant_id, tag))

            def page(cursor: str | None) -> tuple[list[Item], str | None]:
                found = self.table.query(
                    listing, 100, cursor, newest_first=False, sort_prefix=keys.MEMBER_PREFIX
                )
                ids = [m["contact_id"] for m in found.items if m["contact_id"] not in seen]
                seen.update(ids)
                contacts = self.table.batch_get([keys.contact(tenant_id, i) for i in ids])
                members = [c for c in contacts if c.get("type") == keys.CONTACT_ITEM]
                return members, found.next_cursor

            return _Source(f"tag:{listing.partition}", page)

        return [source(tag) for tag in tags]

    def _ranked(self, tenant_id: str, segment: SegmentFilter, now: float) -> list[_Source]:
        """Each stage's score ranks (GSI2), from `min_score` at `now` up."""
        stages = segment.lifecycle_stage or list(LifecycleStage)
        registry = self.table.get(keys.scoring_ranks(tenant_id)) or {}
        ranks = sorted(ranks_in(registry))
        sources = []
        for stage in stages:
            for rank in ranks:
                half_life, fit = parse_rank(rank)
                low = lowest_key(segment.min_score, half_life, fit, now)
                if low is None:
                    continue
                partition = keys.contacts_by_stage(tenant_id, str(stage), rank)
                listing = ListQuery("segment", partition, "GSI2")
                sources.append(self._listed(listing, sort_between=(low, _TOP)))
        return sources
