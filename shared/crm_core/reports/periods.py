"""Report periods: which day, week, month and quarter an instant belongs to in a time zone,
and the periods a report's range covers (pure).

A period is named by a key that sorts as time does within its granularity, so a range of
periods is one DynamoDB key range (`BETWEEN first AND last`):

    day      2026-12-07
    week     2026-W50       (ISO 8601: weeks start on Monday; the week-based year, so
                             2027-01-01, a Friday, is in 2026-W53)
    month    2026-12
    quarter  2026-Q4

An instant's period is that of its wall-clock date in the tenant's zone: a deal won at
23:30 in New York on 7 December is won on the 7th there, though it is the 8th in UTC.
A range is given by dates (`from`, `to`, both included, in the tenant's zone) and covers
every period that holds one of its days; it may span at most `MAX_RANGE_DAYS`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

Granularity = Literal["day", "week", "month", "quarter"]
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)
# Five years of days (one leap day at least): beyond that a daily report is an export.
MAX_RANGE_DAYS = 5 * 365 + 2


class BadRange(ValueError):
    """A range a report cannot answer (the message says why, for a 400)."""


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The wall-clock date of an aware instant in `zone`."""
    if instant.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    return instant.astimezone(zone).date()


def period_key(day: date, granularity: Granularity) -> str:
    """The key of the period of `granularity` that holds `day`."""
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if granularity == "month":
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


def period_keys(day: date) -> dict[Granularity, str]:
    """The keys of every granularity's period holding `day`."""
    return {g: period_key(day, g) for g in GRANULARITIES}


def first_day(key: str, granularity: Granularity) -> date:
    """The first day of the period named `key` (ValueError for a key that is not one)."""
    if granularity == "day":
        return date.fromisoformat(key)
    if granularity == "week":
        year, _, week = key.partition("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    if granularity == "month":
        year, _, month = key.partition("-")
        return date(int(year), int(month), 1)
    year, _, quarter = key.partition("-Q")
    if quarter not in ("1", "2", "3", "4"):
        raise ValueError(f"not a quarter: {key!r}")
    return date(int(year), (int(quarter) - 1) * 3 + 1, 1)


def next_key(key: str, granularity: Granularity) -> str:
    """The key of the period after `key`."""
    start = first_day(key, granularity)
    if granularity == "day":
        return period_key(start + timedelta(days=1), granularity)
    if granularity == "week":
        return period_key(start + timedelta(days=7), granularity)
    months = 1 if granularity == "month" else 3
    year, month = divmod(start.month - 1 + months, 12)
    return period_key(date(start.year + year, month + 1, 1), granularity)


def covered(start: date, end: date, granularity: Granularity) -> list[str]:
    """The keys of the periods holding a day of `start`..`end` (both included), in order;
    BadRange for an end before the start or a range over `MAX_RANGE_DAYS`."""
    if end < start:
        raise BadRange(f"`to` ({end}) is before `from` ({start})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise BadRange(
            f"the range spans {(end - start).days + 1} days; a report covers at most "
            f"{MAX_RANGE_DAYS} (five years)"
        )
    keys = [period_key(start, granularity)]
    last = period_key(end, granularity)
    while keys[-1] != last:
        keys.append(next_key(keys[-1], granularity))
    return keys
