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
from crm_core.contacts.models import LifecycleStage
from crm_core.dynamo import Item
from crm_core.pagination import ListQuery
from crm_core.scoring.ranking import lowest_key
from crm_core.scoring.state import parse_rank, ranks_in
from crm_core.table import Table

PAGE = 200  # items per Query page (each page is also under DynamoDB's 1 MB)
SAMPLE_SIZE = 10
# A preview stops counting after reading this many candidates (and says it is a minimum).
PREVIEW_READ_BUDGET = 50_000
_TOP = "Z"  # above every GSI2 sort key


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
        """Every contact in the segment at `now`, once each, in no particular order."""
        moment = self.clock() if now is None else now
        for item in self.candidates(tenant_id, segment, moment):
            if segment.matches(item, moment):
                yield item

    def is_empty(self, tenant_id: str, segment: SegmentFilter) -> bool:
        """No contact in the segment now: stops at the first member (a send's readiness
        check), or after the preview's read budget (then it says not empty)."""
        now = self.clock()
        for read, item in enumerate(self.candidates(tenant_id, segment, now), start=1):
            if segment.matches(item, now) or read >= PREVIEW_READ_BUDGET:
                return False
        return True

    def preview(self, tenant_id: str, segment: SegmentFilter) -> Preview:
        now = self.clock()
        count = read = 0
        sample: list[Item] = []
        complete = True
        for item in self.candidates(tenant_id, segment, now):
            read += 1
            if segment.matches(item, now):
                count += 1
                if len(sample) < SAMPLE_SIZE:
                    sample.append(item)
            if read >= PREVIEW_READ_BUDGET:
                complete = False
                break
        return Preview(count, complete, sample, self.index_for(segment), read)

    # Candidates ---------------------------------------------------------------------------
    def candidates(self, tenant_id: str, segment: SegmentFilter, now: float) -> Iterator[Item]:
        """Contacts that may be in the segment (a superset), once each."""
        index = self.index_for(segment)
        tags = segment.tags
        if index == "company" and segment.company_id:
            partition = keys.contacts_by_company(tenant_id, segment.company_id)
            yield from self._walk(ListQuery("segment", partition, "GSI4"))
        elif index == "owner" and segment.owner_id:
            partition = keys.contacts_by_owner(tenant_id, segment.owner_id)
            yield from self._walk(ListQuery("segment", partition, "GSI3"))
        elif index == "tags-all" and tags and tags.all:
            yield from self._tagged(tenant_id, tags.all[:1])
        elif index == "stage-score":
            yield from self._ranked(tenant_id, segment, now)
        elif index == "tags-any" and tags and tags.any:
            yield from self._tagged(tenant_id, tags.any)
        else:
            partition = keys.contacts_by_updated(tenant_id)
            yield from self._walk(ListQuery("segment", partition, "GSI1"))

    def _walk(self, listing: ListQuery, **query: Any) -> Iterator[Item]:
        cursor: str | None = None
        while True:
            page = self.table.query(listing, PAGE, cursor, **query)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _tagged(self, tenant_id: str, tags: list[str]) -> Iterator[Item]:
        seen: set[str] = set()
        for tag in tags:
            listing = ListQuery("segment", keys.tag_partition(tenant_id, tag))
            cursor: str | None = None
            while True:
                page = self.table.query(listing, 100, cursor, newest_first=False, sort_prefix="C#")
                ids = [m["contact_id"] for m in page.items if m["contact_id"] not in seen]
                seen.update(ids)
                contacts = self.table.batch_get([keys.contact(tenant_id, i) for i in ids])
                yield from (c for c in contacts if c.get("type") == keys.CONTACT_ITEM)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor

    def _ranked(self, tenant_id: str, segment: SegmentFilter, now: float) -> Iterator[Item]:
        stages = segment.lifecycle_stage or list(LifecycleStage)
        registry = self.table.get(keys.scoring_ranks(tenant_id)) or {}
        ranks = sorted(ranks_in(registry))
        for stage in stages:
            for rank in ranks:
                half_life, fit = parse_rank(rank)
                low = lowest_key(segment.min_score, half_life, fit, now)
                if low is None:
                    continue
                partition = keys.contacts_by_stage(tenant_id, str(stage), rank)
                yield from self._walk(
                    ListQuery("segment", partition, "GSI2"), sort_between=(low, _TOP)
                )
