"""Records kept over time: the state a record had at a moment is the newest of its versions
written at or before it, one Query (newest first, Limit 1) whatever the history's length.

Pipelines, currency settings and forecast months keep their versions this way, under sort
keys `<prefix><at>#<version>` (keys.version_sort_key); docs/decisions.md, 80.
"""

from __future__ import annotations

from typing import Any

from crm_core.dynamo import Item
from crm_core.pagination import ListQuery
from crm_core.table import Table

# Above every version number at one millisecond: the end of a moment's range.
_LAST_OF_MOMENT = "#9999999999"


def version_at(
    table: Table, partition: str, prefix: str, at: str, exact: bool = False
) -> Item | None:
    """The newest item of `partition` whose sort key is `<prefix><time>#<version>` with time
    at or before `at` (an ISO time of clock.format_iso's shape)."""
    listing = ListQuery("versions", partition)
    page = table.query(
        listing,
        1,
        None,
        newest_first=True,
        sort_between=(prefix, prefix + at + _LAST_OF_MOMENT),
        consistent=True,
        exact=exact,
    )
    return page.items[0] if page.items else None


def later_of(now: str, *times: Any) -> str:
    """The time of a change: now, or the latest time the record already shows if a clock
    elsewhere ran ahead, so that a record's versions are in order of their times."""
    return max([now, *(t for t in times if isinstance(t, str))])
