"""Business time: which instants count toward a support SLA, and arithmetic over them.

An instant is business time when its wall-clock reading in the calendar's time zone falls in
one of the intervals of its weekday, on a day that is not a holiday. That definition decides
the DST days: the hour a spring-forward skips is never business time, the hour a fall-back
repeats counts twice, and a round-the-clock day lasts 23 or 25 hours.

Everything here works on whole intervals, never minute by minute: a local day's intervals
become at most a few UTC spans (one per UTC offset the zone uses that day), and a due time
is found by subtracting span lengths until what is left fits in one. A target of days takes
a handful of days' spans, whatever its length in minutes. Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_A_DAY = 24 * 60
# Offsets lie within -12:00..+14:00; a local day's instants lie within these bounds of its
# wall-clock midnight read as UTC (with room for any transition that day).
_EARLIEST = timedelta(hours=26)
_LATEST = timedelta(hours=38)
_SAMPLE = timedelta(hours=2)  # finer than any two transitions of a real zone
# A calendar that yields no business time for this long has none (every day a holiday).
MAX_IDLE_DAYS = 3 * 366

Span = tuple[datetime, datetime]


class NoBusinessTime(ValueError):
    """The calendar has no business time after a moment (no intervals, or only holidays)."""


@dataclass(frozen=True)
class BusinessCalendar:
    """A tenant's business hours: `week[0]` is Monday; each day's intervals are sorted,
    disjoint minute ranges [start, end) of the local day, `end` at most 1440 ("24:00")."""

    timezone: str
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("a week has seven days")
        for intervals in self.week:
            previous_end = -1
            for start, end in intervals:
                if not 0 <= start < end <= MINUTES_A_DAY or start < previous_end:
                    raise ValueError("intervals are sorted, disjoint and within the day")
                previous_end = end

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def has_hours(self) -> bool:
        return any(self.week)


def round_the_clock(timezone: str = "UTC") -> BusinessCalendar:
    return BusinessCalendar(timezone, (((0, MINUTES_A_DAY),),) * 7)


def business_seconds(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """The business time in [start, end), in seconds (0 when end is not after start)."""
    total = timedelta()
    if end <= start:
        return 0.0
    for span_start, span_end in spans_from(calendar, start):
        if span_start >= end:
            break
        total += min(span_end, end) - span_start
    return total.total_seconds()


def add_business_seconds(calendar: BusinessCalendar, start: datetime, seconds: float) -> datetime:
    """The first instant at which `seconds` of business time have passed since `start`
    (`start` itself for none). Raises NoBusinessTime for a calendar without any."""
    left = timedelta(seconds=seconds)
    if left <= timedelta():
        return _utc(start)
    for span_start, span_end in spans_from(calendar, start):
        length = span_end - span_start
        if left <= length:
            return span_start + left
        left -= length
    raise NoBusinessTime("the calendar has no business time")  # pragma: no cover


def spans_from(calendar: BusinessCalendar, start: datetime) -> Iterator[Span]:
    """The business time from `start` on, as UTC spans in time order (adjacent spans may
    touch). Local days are read in order, a day ahead of what is handed out: were a zone to
    turn its clocks back across midnight (say 00:30 to 23:30), the end of one local day
    would come after the start of the next. No zone of tzdata does in 2015-2027 (the
    clock goes back at or after midnight's first reading), so this is a guard."""
    if not calendar.has_hours:
        raise NoBusinessTime("the calendar has no business hours")
    start = _utc(start)
    day = start.astimezone(calendar.zone).date() - timedelta(days=2)
    waiting: list[Span] = []
    idle = 0
    while True:
        while not waiting or _earliest(day) <= waiting[0][0]:
            spans = _day_spans(calendar, day)
            idle = 0 if spans else idle + 1
            if idle > MAX_IDLE_DAYS:
                raise NoBusinessTime("the calendar has no business time after its holidays")
            for span in spans:
                heapq.heappush(waiting, span)
            day += timedelta(days=1)
        span_start, span_end = heapq.heappop(waiting)
        if span_end > start:
            yield max(span_start, start), span_end


def _earliest(day: date) -> datetime:
    """No instant of local `day` (in any zone) comes before this."""
    return datetime.combine(day, time(), UTC) - _EARLIEST


@functools.lru_cache(maxsize=4096)
def _day_spans(calendar: BusinessCalendar, day: date) -> tuple[Span, ...]:
    """The UTC spans of one local day's business intervals: per UTC offset in use that day,
    the instants whose reading (instant + offset) is within an interval."""
    if day in calendar.holidays:
        return ()
    intervals = calendar.week[day.weekday()]
    if not intervals:
        return ()
    midnight = datetime.combine(day, time(), UTC)  # the wall-clock midnight, read as UTC
    spans: list[Span] = []
    for segment_start, segment_end, offset in _offset_segments(
        calendar.timezone, midnight - _EARLIEST, midnight + _LATEST
    ):
        for first, last in intervals:
            span_start = max(midnight + timedelta(minutes=first) - offset, segment_start)
            span_end = min(midnight + timedelta(minutes=last) - offset, segment_end)
            if span_start < span_end:
                spans.append((span_start, span_end))
    return tuple(sorted(spans))


@functools.lru_cache(maxsize=4096)
def _offset_segments(
    timezone: str, low: datetime, high: datetime
) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """[low, high) cut where the zone's UTC offset changes: (start, end, offset) each. The
    changes are found by sampling every two hours and bisecting to the second."""
    zone = ZoneInfo(timezone)

    def offset(moment: datetime) -> timedelta:
        return moment.astimezone(zone).utcoffset() or timedelta()

    segments = []
    segment_start, current = low, offset(low)
    probe = low
    while probe < high:
        following = min(probe + _SAMPLE, high)
        if offset(following) != current:
            before, after = probe, following  # offset(before) == current != offset(after)
            while after - before > timedelta(seconds=1):
                middle = before + (after - before) / 2
                middle = middle.replace(microsecond=0)
                if middle <= before:
                    break
                if offset(middle) == current:
                    before = middle
                else:
                    after = middle
            segments.append((segment_start, after, current))
            segment_start, current = after, offset(after)
            probe = after
            continue
        probe = following
    segments.append((segment_start, high, current))
    return tuple(segments)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return moment.astimezone(UTC)
