"""Report periods: an instant's day, week, month and quarter in the tenant's zone, and the
periods a range covers, checked against the calendar day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.reports.periods import (
    GRANULARITIES,
    MAX_RANGE_DAYS,
    BadRange,
    Granularity,
    covered,
    first_day,
    local_date,
    next_key,
    period_key,
)

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


def test_a_deal_won_at_23_30_in_new_york_is_won_that_day_there() -> None:
    new_york = ZoneInfo("America/New_York")
    won = datetime(2026, 12, 7, 23, 30, tzinfo=new_york)
    assert local_date(won.astimezone(UTC), new_york) == date(2026, 12, 7)
    assert local_date(won.astimezone(UTC), ZoneInfo("UTC")) == date(2026, 12, 8)


def test_the_keys_of_a_day() -> None:
    friday = date(2027, 1, 1)
    assert [period_key(friday, g) for g in GRANULARITIES] == [
        "2027-01-01",
        "2026-W53",  # ISO 8601: the week of 2026's last Thursday
        "2027-01",
        "2027-Q1",
    ]


@pytest.mark.parametrize(
    ("key", "granularity", "first"),
    [
        ("2026-W01", "week", date(2025, 12, 29)),
        ("2026-Q4", "quarter", date(2026, 10, 1)),
        ("2024-02", "month", date(2024, 2, 1)),
    ],
)
def test_first_days(key: str, granularity: Granularity, first: date) -> None:
    assert first_day(key, granularity) == first


@given(days, st.sampled_from(GRANULARITIES))
def test_a_day_is_in_its_period_and_the_next_period_follows(
    day: date, granularity: Granularity
) -> None:
    key = period_key(day, granularity)
    start = first_day(key, granularity)
    after = first_day(next_key(key, granularity), granularity)
    assert start <= day < after
    # Every day from the first to the day before the next period is in the period.
    assert period_key(after - timedelta(days=1), granularity) == key
    assert period_key(start, granularity) == key
    assert next_key(key, granularity) > key


@given(days, st.integers(min_value=0, max_value=800), st.sampled_from(GRANULARITIES))
def test_a_range_covers_exactly_the_periods_of_its_days(
    start: date, length: int, granularity: Granularity
) -> None:
    end = start + timedelta(days=length)
    keys = covered(start, end, granularity)
    by_day = {period_key(start + timedelta(days=n), granularity) for n in range(length + 1)}
    assert keys == sorted(by_day)
    assert len(keys) == len(set(keys))


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(BadRange, match="before"):
        covered(date(2026, 2, 1), date(2026, 1, 1), "day")
    with pytest.raises(BadRange, match="five years"):
        covered(date(2020, 1, 1), date(2020, 1, 1) + timedelta(days=MAX_RANGE_DAYS), "month")
    assert len(covered(date(2020, 1, 1), date(2024, 12, 31), "day")) == 1827
