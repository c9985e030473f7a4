"""Business-time arithmetic against a minute-by-minute count of the same definition: an
instant is business time when its wall-clock reading, in the calendar's zone, is within an
interval of its weekday and its local date is not a holiday. Random calendars, holidays and
zones with DST (and one that turns its clocks at midnight, one at +05:45)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.cases.business_time import (
    MINUTES_A_DAY,
    BusinessCalendar,
    NoBusinessTime,
    add_business_seconds,
    business_seconds,
    round_the_clock,
    spans_from,
)

ZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kathmandu",  # +05:45
    "America/Santiago",  # DST changes at midnight local time (24:00 / 00:00)
    "America/Havana",  # clocks turn at midnight (00:00 -> 01:00, 01:00 -> 00:00)
    "Pacific/Apia",
)
MINUTE = timedelta(minutes=1)


@st.composite
def day_intervals(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    cuts = sorted(
        draw(st.sets(st.integers(min_value=0, max_value=MINUTES_A_DAY // 15), max_size=6))
    )
    cuts = [c * 15 for c in cuts]
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return tuple((a, b) for a, b in pairs if a < b)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    week = tuple(draw(day_intervals()) for _ in range(7))
    if not any(week):
        week = (((9 * 60, 17 * 60),), *week[1:])
    holidays = draw(
        st.frozensets(
            st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)), max_size=40
        )
    )
    return BusinessCalendar(zone, week, holidays)


def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The hours of 2026 and 2027 at which the zone's UTC offset changes."""
    zone = ZoneInfo(zone_name)
    found, moment = [], datetime(2026, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(zone).utcoffset()
    while moment.year < 2028:
        moment += timedelta(hours=1)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(moment)
        previous = offset
    return tuple(found)


TRANSITIONS = {zone: transitions(zone) for zone in ZONES}
any_start = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
)


@st.composite
def calendar_and_start(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """Half of the starts within days of one of the zone's DST changes, where the
    arithmetic has something to get wrong."""
    calendar = draw(calendars())
    near = TRANSITIONS[calendar.timezone]
    if near and draw(st.booleans()):
        moment = draw(st.sampled_from(near)) + timedelta(
            minutes=draw(st.integers(min_value=-3 * MINUTES_A_DAY, max_value=MINUTES_A_DAY))
        )
    else:
        moment = draw(any_start)
    return calendar, moment.replace(second=0, microsecond=0)


def is_business(calendar: BusinessCalendar, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(calendar.timezone))
    if local.date() in calendar.holidays:
        return False
    reading = local.hour * 60 + local.minute
    return any(a <= reading < b for a, b in calendar.week[local.weekday()])


def brute_minutes(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    count, moment = 0, start
    while moment < end:
        count += is_business(calendar, moment)
        moment += MINUTE
    return count


def brute_due(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    moment = start
    while minutes:
        minutes -= is_business(calendar, moment)
        moment += MINUTE
    return moment


@settings(max_examples=120, deadline=None)
@given(calendar_and_start(), st.integers(min_value=0, max_value=6 * MINUTES_A_DAY))
def test_business_seconds_count_what_the_minute_by_minute_count_does(
    case: tuple[BusinessCalendar, datetime], length: int
) -> None:
    calendar, start = case
    end = start + timedelta(minutes=length)
    assert business_seconds(calendar, start, end) == brute_minutes(calendar, start, end) * 60


@settings(max_examples=120, deadline=None)
@given(calendar_and_start(), st.integers(min_value=0, max_value=3 * 8 * 60))
def test_a_due_time_is_the_minute_the_count_reaches_the_target(
    case: tuple[BusinessCalendar, datetime], minutes: int
) -> None:
    calendar, start = case
    due = add_business_seconds(calendar, start, minutes * 60)
    expected = brute_due(calendar, start, minutes)
    # The arithmetic answers the instant the last business minute ends; the count steps
    # past minutes outside business time after it only when it needs more.
    assert due == expected
    assert business_seconds(calendar, start, due) == minutes * 60


@settings(max_examples=60, deadline=None)
@given(calendar_and_start())
def test_spans_are_in_time_order_and_disjoint(case: tuple[BusinessCalendar, datetime]) -> None:
    calendar, start = case
    previous_end = start
    for n, (span_start, span_end) in enumerate(spans_from(calendar, start)):
        assert previous_end <= span_start < span_end
        previous_end = span_end
        if n > 40:
            break


def paris(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo("Europe/Paris"))


def test_round_the_clock_days_last_23_and_25_hours_across_dst() -> None:
    calendar = round_the_clock("Europe/Paris")
    spring = business_seconds(calendar, paris("2026-03-29", "00:00"), paris("2026-03-30", "00:00"))
    autumn = business_seconds(calendar, paris("2026-10-25", "00:00"), paris("2026-10-26", "00:00"))
    assert (spring, autumn) == (23 * 3600, 25 * 3600)


def test_the_skipped_hour_is_not_business_time_and_the_repeated_one_counts_twice() -> None:
    week = (((120, 240),),) * 7  # 02:00 to 04:00 every day
    calendar = BusinessCalendar("Europe/Paris", week)
    day = timedelta(days=1)
    spring = paris("2026-03-29", "00:00")
    autumn = paris("2026-10-25", "00:00")
    assert business_seconds(calendar, spring, spring + day) == 3600  # 03:00-04:00 only
    assert business_seconds(calendar, autumn, autumn + day) == 3 * 3600


def test_a_due_time_skips_weekends_and_holidays() -> None:
    nine_to_five = ((9 * 60, 17 * 60),)
    calendar = BusinessCalendar(
        "Europe/Paris", (nine_to_five,) * 5 + ((), ()), frozenset({date(2026, 12, 25)})
    )
    # Thursday 24 December 16:00, 4 business hours: 1 on Thursday, Friday is Christmas,
    # then Monday 09:00 + 3 h.
    due = add_business_seconds(calendar, paris("2026-12-24", "16:00"), 4 * 3600)
    assert due == paris("2026-12-28", "12:00")


def test_a_calendar_without_business_time_is_refused() -> None:
    with pytest.raises(NoBusinessTime):
        add_business_seconds(BusinessCalendar("UTC", ((),) * 7), datetime.now(UTC), 60)
    only_monday = BusinessCalendar("UTC", (((0, 60),),) + ((),) * 6)
    every_monday = frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(200))
    closed = BusinessCalendar("UTC", only_monday.week, every_monday)
    with pytest.raises(NoBusinessTime):
        add_business_seconds(closed, datetime(2026, 1, 1, tzinfo=UTC), 60)


def test_a_long_target_costs_days_not_minutes() -> None:
    """A 30-day resolution target over nine-to-five weekdays reads about 45 days' spans."""
    calendar = BusinessCalendar("America/New_York", (((540, 1020),),) * 5 + ((), ()))
    start = datetime(2026, 3, 2, 14, tzinfo=UTC)
    spans = 0
    left = 30 * 8 * 3600
    for span_start, span_end in spans_from(calendar, start):
        spans += 1
        left -= int((span_end - span_start).total_seconds())
        if left <= 0:
            break
    assert spans == 30
    due = add_business_seconds(calendar, start, 30 * 8 * 3600)
    assert due.astimezone(ZoneInfo("America/New_York")).hour == 17  # the 30th day's end
