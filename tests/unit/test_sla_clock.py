"""An SLA clock against a minute-by-minute simulation: random calendars and zones (DST
included), pauses, resumes and priority changes at random minutes. The clock's due time
must be the minute at which the business minutes counted while running reach the target
in force at the end, and its breach, warning and met answers must agree with the count."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.cases.business_time import BusinessCalendar, round_the_clock
from crm_core.cases.sla_clock import SlaClock
from tests.unit.test_business_time import MINUTE, calendar_and_start, is_business

events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 60),  # minutes after the previous event
        st.sampled_from(["pause", "resume", "retarget"]),
        st.integers(min_value=1, max_value=16 * 60),  # a new target, in minutes
    ),
    max_size=6,
)


def simulate(
    calendar: BusinessCalendar, start: datetime, target: int, steps: list[tuple[int, str, int]]
) -> tuple[SlaClock, datetime, int, bool, int]:
    """The clock after the steps; the end instant; and by counting: the minutes counted,
    whether it runs, and the target in force."""
    clock = SlaClock.started(target * 60, start)
    moment, counted, running = start, 0, True
    for gap, action, minutes in steps:
        for _ in range(gap):
            counted += running and is_business(calendar, moment)
            moment += MINUTE
        if action == "pause":
            clock, running = clock.pause(calendar, moment), False
        elif action == "resume":
            clock, running = clock.resume(moment), True
        else:
            clock, target = clock.retarget(minutes * 60), minutes
    return clock, moment, counted, running, target


@settings(max_examples=80, deadline=None)
@given(calendar_and_start(), st.integers(min_value=1, max_value=16 * 60), events)
def test_the_due_time_is_when_the_running_count_reaches_the_target(
    case: tuple[BusinessCalendar, datetime], target: int, steps: list[tuple[int, str, int]]
) -> None:
    calendar, start = case
    clock, moment, counted, running, target = simulate(calendar, start, target, steps)
    assert clock.elapsed(calendar, moment) == counted * 60
    assert clock.paused is not running
    if not running:
        assert clock.due_at(calendar) is None
        assert clock.breached(calendar, moment) is (counted >= target)
        return
    due = clock.due_at(calendar)
    assert due is not None
    if counted >= target:  # reached already (a lower target, say): due when it was reached
        assert due <= moment
        assert clock.breached(calendar, moment)
        return
    while counted < target:
        counted += is_business(calendar, moment)
        moment += MINUTE
    assert due == moment
    assert not clock.breached(calendar, due - MINUTE)
    assert clock.breached(calendar, due)


def test_met_on_the_due_instant_is_on_time_and_a_minute_later_is_not() -> None:
    calendar = round_the_clock()
    start = datetime.fromisoformat("2026-12-07T09:00:00+00:00")
    clock = SlaClock.started(3600, start)
    due = clock.due_at(calendar)
    assert due == start + timedelta(hours=1)
    assert not clock.meet(calendar, due).breached(calendar, due + timedelta(days=1))
    assert clock.meet(calendar, due + MINUTE).breached(calendar, due + MINUTE)
    met = clock.meet(calendar, due)
    assert (met.due_at(calendar), met.met_at, met.paused, met.running) == (None, due, False, False)


def test_a_reopened_clock_goes_on_from_what_it_had_counted() -> None:
    calendar = round_the_clock()
    start = datetime.fromisoformat("2026-12-07T09:00:00+00:00")
    clock = SlaClock.started(4 * 3600, start).meet(calendar, start + timedelta(hours=3))
    reopened = clock.reopen(start + timedelta(days=2))
    assert reopened.due_at(calendar) == start + timedelta(days=2, hours=1)


def test_warnings_come_at_their_share_of_the_target() -> None:
    calendar = BusinessCalendar("Europe/Paris", (((540, 1020),),) * 5 + ((), ()))
    start = datetime.fromisoformat("2026-12-07T09:00:00+01:00")  # a Monday, 09:00 in Paris
    clock = SlaClock.started(8 * 3600, start)  # one business day
    assert clock.warn_at(calendar, 75) == start + timedelta(hours=6)
    assert clock.due_at(calendar) == start + timedelta(hours=8)
    paused = clock.pause(calendar, start + timedelta(hours=7))
    assert paused.warn_at(calendar, 75) is None
    resumed = paused.resume(start + timedelta(days=1))  # Tuesday 09:00: one hour left
    assert resumed.due_at(calendar) == start + timedelta(days=1, hours=1)
    assert resumed.warn_at(calendar, 75) == start + timedelta(days=1)  # already past: now
