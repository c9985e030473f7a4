"""A case's SLA targets through its life: opening, pauses, replies, solving, reopening,
priority changes, and the alarms a timer announces once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from crm_core.cases import lifecycle
from crm_core.cases.case_sla import (
    SlaChange,
    announced,
    apply,
    due_alarms,
    next_alarm_at,
    sla_state,
    view,
)
from crm_core.cases.sla_policy import DEFAULT_POLICY, SlaPolicy
from crm_core.clock import format_iso

POLICY = SlaPolicy.model_validate({**DEFAULT_POLICY, "version": 0})
CALENDAR = POLICY.calendar()  # weekdays 09:00-17:00 UTC
MONDAY = datetime.fromisoformat("2026-12-07T09:00:00+00:00")
HOUR = timedelta(hours=1)


def opened(priority: str = "urgent", at: datetime = MONDAY) -> dict[str, Any]:
    return apply(POLICY, priority, {}, SlaChange(at, "new"))


def test_an_urgent_case_is_due_within_business_hours() -> None:
    sla = opened()
    assert sla["first_response"]["due_at"] == format_iso(MONDAY + HOUR)
    assert sla["resolution"]["due_at"] == format_iso(MONDAY + 8 * HOUR)
    assert sla["first_response"]["warn_at"] == format_iso(MONDAY + 45 * timedelta(minutes=1))
    assert "next_response" not in sla
    shown = view(sla, CALENDAR, MONDAY)
    assert shown["first_response"] == {
        "target_minutes": 60,
        "due_at": format_iso(MONDAY + HOUR),
        "met_at": None,
        "breached": False,
        "paused": False,
    }
    assert shown["next_response"] is None


def test_a_case_opened_on_friday_evening_is_due_on_monday() -> None:
    friday = MONDAY + timedelta(days=4, hours=7, minutes=30)  # Friday 16:30
    sla = opened(at=friday)
    assert sla["first_response"]["due_at"] == format_iso(MONDAY + timedelta(days=7, minutes=30))


def test_waiting_on_the_customer_stops_every_clock() -> None:
    sla = opened()
    pending = apply(POLICY, "urgent", sla, SlaChange(MONDAY + 0.5 * HOUR, "pending", "new"))
    assert pending["first_response"]["due_at"] is None
    assert view(pending, CALENDAR, MONDAY + 5 * HOUR)["first_response"]["paused"] is True
    assert not view(pending, CALENDAR, MONDAY + 5 * HOUR)["first_response"]["breached"]
    back = apply(POLICY, "urgent", pending, SlaChange(MONDAY + 3 * HOUR, "open", "pending"))
    # 30 minutes counted before the pause, 30 left from 12:00.
    assert back["first_response"]["due_at"] == format_iso(MONDAY + 3.5 * HOUR)
    assert back["resolution"]["due_at"] == format_iso(MONDAY + 8 * HOUR + 2.5 * HOUR + 16 * HOUR)


def test_replies_meet_first_response_then_each_next_response_cycle() -> None:
    sla = opened()
    replied = apply(
        POLICY, "urgent", sla, SlaChange(MONDAY + 0.25 * HOUR, "open", "new", agent_replied=True)
    )
    assert replied["first_response"]["met_at"] == format_iso(MONDAY + 0.25 * HOUR)
    assert "next_response" not in replied
    wrote = apply(
        POLICY, "urgent", replied, SlaChange(MONDAY + HOUR, "open", "open", customer_wrote=True)
    )
    assert wrote["next_response"]["due_at"] == format_iso(MONDAY + 3 * HOUR)
    again = apply(
        POLICY, "urgent", wrote, SlaChange(MONDAY + 2 * HOUR, "open", "open", customer_wrote=True)
    )
    assert again["next_response"]["due_at"] == wrote["next_response"]["due_at"]
    answered = apply(
        POLICY, "urgent", again, SlaChange(MONDAY + 4 * HOUR, "open", "open", agent_replied=True)
    )
    shown = view(answered, CALENDAR, MONDAY + 5 * HOUR)["next_response"]
    assert shown["met_at"] == format_iso(MONDAY + 4 * HOUR)
    assert shown["breached"] is True  # met an hour late


def test_solving_meets_every_target_and_a_reopened_case_goes_on() -> None:
    sla = opened()
    solved = apply(POLICY, "urgent", sla, SlaChange(MONDAY + 2 * HOUR, "solved", "new"))
    assert {t["met_at"] for t in solved.values()} == {format_iso(MONDAY + 2 * HOUR)}
    reopened = apply(
        POLICY,
        "urgent",
        solved,
        SlaChange(MONDAY + 4 * HOUR, "open", "solved", customer_wrote=True),
    )
    assert reopened["resolution"]["met_at"] is None
    assert reopened["resolution"]["due_at"] == format_iso(MONDAY + 10 * HOUR + 16 * HOUR)
    assert reopened["first_response"]["met_at"] == format_iso(MONDAY + 2 * HOUR)
    assert reopened["next_response"]["due_at"] == format_iso(MONDAY + 6 * HOUR)


def test_a_priority_change_measures_the_new_target_from_the_opening() -> None:
    sla = opened("low")
    urgent = apply(POLICY, "low", sla, SlaChange(MONDAY + 2 * HOUR, "new", "new", "urgent"))
    assert urgent["first_response"]["due_at"] == format_iso(MONDAY + HOUR)
    assert view(urgent, CALENDAR, MONDAY + 2 * HOUR)["first_response"]["breached"] is True
    assert sla_state(urgent, CALENDAR, MONDAY + 2 * HOUR) == "breached"


def test_a_priority_without_a_target_shows_none_and_keeps_counting() -> None:
    policy = SlaPolicy.model_validate(
        {**DEFAULT_POLICY, "targets": {"urgent": DEFAULT_POLICY["targets"]["urgent"]}, "version": 1}
    )
    sla = apply(policy, "low", {}, SlaChange(MONDAY, "new"))
    assert view(sla, CALENDAR, MONDAY)["first_response"] is None
    assert next_alarm_at(sla) is None
    urgent = apply(policy, "low", sla, SlaChange(MONDAY + 0.5 * HOUR, "new", "new", "urgent"))
    assert urgent["first_response"]["due_at"] == format_iso(MONDAY + HOUR)


def test_each_alarm_is_announced_once_and_a_breach_silences_its_warning() -> None:
    sla = opened()
    assert next_alarm_at(sla) == format_iso(MONDAY + 0.75 * HOUR)
    assert due_alarms(sla, MONDAY + 0.5 * HOUR) == []
    assert due_alarms(sla, MONDAY + 0.75 * HOUR) == [("first_response", "warning")]
    warned = announced(sla, "first_response", "warning", MONDAY + 0.75 * HOUR)
    assert sla_state(warned, CALENDAR, MONDAY + 0.8 * HOUR) == "at_risk"
    assert due_alarms(warned, MONDAY + 0.8 * HOUR) == []
    assert next_alarm_at(warned) == format_iso(MONDAY + HOUR)
    assert due_alarms(warned, MONDAY + HOUR) == [("first_response", "breach")]
    breached = announced(warned, "first_response", "breach", MONDAY + HOUR)
    assert due_alarms(breached, MONDAY + 2 * HOUR) == []
    # A timer late by hours announces the breach, not a stale warning first.
    assert due_alarms(sla, MONDAY + 2 * HOUR) == [("first_response", "breach")]
    assert next_alarm_at(breached) == format_iso(MONDAY + 6 * HOUR)  # resolution's warning


def test_an_answered_or_paused_case_has_no_alarm_coming() -> None:
    sla = opened()
    answered = apply(
        POLICY, "urgent", sla, SlaChange(MONDAY + 0.5 * HOUR, "pending", "new", agent_replied=True)
    )
    assert next_alarm_at(answered) is None
    assert due_alarms(answered, MONDAY + 100 * HOUR) == []


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("new", "open", True),
        ("new", "solved", True),
        ("new", "closed", False),
        ("open", "new", False),
        ("pending", "on_hold", True),
        ("solved", "open", True),
        ("solved", "closed", True),
        ("closed", "open", False),
        ("closed", "solved", False),
        ("open", "open", False),
    ],
)
def test_the_moves_a_help_desk_allows(old: str, new: str, allowed: bool) -> None:
    assert lifecycle.allowed(old, new) is allowed


def test_a_customer_reply_puts_a_waiting_case_back_in_the_agents_hands() -> None:
    assert [lifecycle.after_customer_reply(s) for s in lifecycle.STATUSES] == [
        "new",
        "open",
        "open",
        "open",
        "open",
        "closed",
    ]
