"""Report aggregates in the single table: counters ADDed as records change, exactly once.

Each record that feeds a report has a source item (`keys.report_source`) holding the
contribution it applied last (contributions.py) and the change that applied it: the event's
`occurred_at` and id. Applying a record's new state is one transaction:

- an Update per bucket whose counters move, `ADD` of the difference (creating the bucket);
- the source item Put with the new contribution, on the condition that it is still the one
  read (`applied_event = :seen`, or absent), so two changes of one record processed at once
  do not both subtract the same old contribution: the loser reads again and retries.

A change older than (or the same as) the one applied is stale and changes nothing: a
duplicate, a replay or an event overtaken by a later one has no effect, in any order. A
deleted record keeps its source item, empty, as a tombstone, so that an update overtaken by
the delete cannot bring its counters back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from crm_core import keys
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange
from crm_core.pagination import ListQuery
from crm_core.reports.contributions import Bucket, Contribution, diff, from_stored, to_stored
from crm_core.table import Table, TransactionCancelled, read_modify_write

AGGREGATE_ITEM = "report_aggregate"
SOURCE_ITEM = "report_source"
# A transaction holds 100 parts: the source item and 99 buckets at most.
MAX_BUCKETS_MOVED = 99
QUERY_PAGE = 1000

Applied = Literal["applied", "stale"]


@dataclass(frozen=True, order=True)
class Change:
    """The event that carries a record's state: its time, then its id to break ties."""

    at: str
    event_id: str


def dims_key(bucket: Bucket) -> str:
    """The dimensions' values in a sort key: each percent-encoded, so no value can hold the
    separator."""
    return "#".join(quote(value, safe="") for _, value in bucket.dims)


def bucket_key(tenant_id: str, bucket: Bucket) -> dict[str, str]:
    return keys.report_aggregate(
        tenant_id, bucket.report, bucket.granularity, bucket.period, dims_key(bucket)
    )


class ReportAggregates:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def apply(
        self,
        tenant_id: str,
        kind: str,
        record_id: str,
        change: Change,
        new: Contribution | None,
    ) -> Applied:
        """Make the reports hold `new` as the record's contribution (None: the record was
        deleted), unless a later change of it was applied already."""
        key = keys.report_source(tenant_id, kind, record_id)

        def attempt() -> Applied:
            held = self.table.get(key)
            if held is not None and Change(held["applied_at"], held["applied_event"]) >= change:
                return "stale"
            old = from_stored(held["contribution"]) if held else {}
            target = new or {}
            moves = diff(old, target)
            if len(moves) > MAX_BUCKETS_MOVED:
                raise ValueError(f"a change moving {len(moves)} buckets is more than one write")
            writes = [self._add(tenant_id, bucket, deltas) for bucket, deltas in moves.items()]
            source: dict[str, Any] = {
                **key,
                "type": SOURCE_ITEM,
                "tenant_id": tenant_id,
                "kind": kind,
                "record_id": record_id,
                "applied_at": change.at,
                "applied_event": change.event_id,
                "contribution": to_stored(target),
                "deleted": new is None,
            }
            if held is None:
                writes.append(self.op.put(source, "attribute_not_exists(PK)"))
            else:
                writes.append(
                    self.op.put(source, "applied_event = :seen", seen=held["applied_event"])
                )
            try:
                self.table.transact(writes)
            except TransactionCancelled:
                raise ConcurrentChange("the record's contribution changed meanwhile") from None
            return "applied"

        return read_modify_write(attempt, "report source")

    def _add(self, tenant_id: str, bucket: Bucket, deltas: dict[str, Any]) -> dict[str, Any]:
        names = {"#type": "type", "#dims": "dims"}
        adds = []
        values: dict[str, Any] = {
            "type": AGGREGATE_ITEM,
            "tenant": tenant_id,
            "report": bucket.report,
            "granularity": bucket.granularity,
            "period": bucket.period,
            "dims": bucket.dim_values(),
        }
        for index, (name, delta) in enumerate(sorted(deltas.items())):
            names[f"#c{index}"] = name
            values[f"c{index}"] = delta
            adds.append(f"#c{index} :c{index}")
        expression = (
            "SET #type = :type, tenant_id = :tenant, report = :report, "
            "granularity = :granularity, period = :period, #dims = :dims "
            f"ADD {', '.join(adds)}"
        )
        return self.op.update(bucket_key(tenant_id, bucket), expression, None, names, **values)

    # Reads ------------------------------------------------------------------------------
    def buckets(
        self,
        tenant_id: str,
        report: str,
        granularity: str,
        first_period: str,
        last_period: str,
    ) -> Iterator[Item]:
        """The aggregates of `report` from `first_period` to `last_period` (both included),
        period by period: one Query per page of 1,000."""
        listing = ListQuery(
            f"report-{report}", keys.report_aggregates(tenant_id, report, granularity)
        )
        bounds = (f"{first_period}#", f"{last_period}#\U0010ffff")
        cursor: str | None = None
        while True:
            page = self.table.query(
                listing, QUERY_PAGE, cursor, newest_first=False, sort_between=bounds, exact=True
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
