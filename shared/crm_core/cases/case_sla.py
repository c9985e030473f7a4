"""A case's three SLA targets and what each change of the case does to them (pure).

- first response: from the case's opening to the first public reply of an agent;
- next response: from a customer's message that follows an agent's reply, to the agent's
  next public reply (a new cycle each time; a second message before the reply changes
  nothing);
- resolution: from opening to solved; a reopened case goes on from what it had counted.

Every clock stops while the case is pending or on hold, and solving a case meets all
three (no reply is owed on a solved case). A priority change swaps the targets and keeps
the time counted. Each target remembers when its warning and its breach were announced, so
that a timer firing twice announces once (`due_alarms`).

Stored form, per target (absent: not tracked for the case's priority, or not started):
`{"target_seconds", "banked_ms", "running_since", "met_at", "due_at", "warn_at",
"warned_at", "breached_at"}` (`target_seconds` null when the priority has no target for it:
the clock still counts); `due_at` and `warn_at` are derived on every change, for the API,
the case lists and the timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from crm_core.cases.business_time import BusinessCalendar
from crm_core.cases.lifecycle import PAUSED
from crm_core.cases.sla_clock import SlaClock
from crm_core.cases.sla_policy import TARGETS, SlaPolicy
from crm_core.clock import format_iso, parse_iso

Alarm = Literal["warning", "breach"]
Stored = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class SlaChange:
    """What happened to a case, for its clocks: all optional, at one moment."""

    at: datetime
    status: str  # the status after the change
    previous_status: str | None = None  # None: the case is being opened
    priority: str | None = None  # the priority after the change, when it changes
    agent_replied: bool = False  # a public reply of an agent
    customer_wrote: bool = False  # a message of the customer


def apply(policy: SlaPolicy, priority: str, sla: Mapping[str, Any], change: SlaChange) -> Stored:
    """The targets after `change` (a new dict; `sla` is not modified). Every clock counts
    whether or not the priority has a target for it, so that a priority change later
    measures the new target from the case's opening, as it would have from the start."""
    calendar = policy.calendar()
    clocks = {name: _clock(sla.get(name)) for name in TARGETS}
    marks = {name: dict(sla.get(name) or {}) for name in TARGETS}
    at = _to_the_millisecond(change.at)
    paused = change.status in PAUSED
    solved = change.status in ("solved", "closed")

    if change.previous_status is None:  # opened
        for name in ("first_response", "resolution"):
            seconds = policy.target_seconds(priority, name)
            clocks[name] = SlaClock.started(seconds, at, running=not paused and not solved)
    if change.priority is not None:
        priority = change.priority
    # The targets of the priority in the policy of now: a priority change swaps them, and
    # so does a new policy, from the case's next change on.
    for name, clock in clocks.items():
        if clock is not None:
            clocks[name] = clock.retarget(policy.target_seconds(priority, name))

    first, resolution = clocks["first_response"], clocks["resolution"]
    answered = first is not None and first.met_at is not None
    if change.previous_status in ("solved", "closed") and not solved and resolution is not None:
        clocks["resolution"] = resolution.reopen(at)
    if change.agent_replied:
        for name in ("first_response", "next_response"):
            clock = clocks[name]
            if clock is not None:
                clocks[name] = clock.meet(calendar, at)
    elif change.customer_wrote and answered:
        waiting = clocks["next_response"]
        if waiting is None or waiting.met_at is not None:
            seconds = policy.target_seconds(priority, "next_response")
            clocks["next_response"] = SlaClock.started(seconds, at)
            marks["next_response"] = {}  # a new cycle: its own warning and breach

    for name, clock in clocks.items():
        if clock is None:
            continue
        if solved:
            clocks[name] = clock.meet(calendar, at)
        elif paused:
            clocks[name] = clock.pause(calendar, at)
        else:
            clocks[name] = clock.resume(at)

    return {
        name: _stored(clock, marks[name], calendar, policy.warn_at_percent)
        for name, clock in clocks.items()
        if clock is not None
    }


def due_alarms(sla: Mapping[str, Any], now: datetime) -> list[tuple[str, Alarm]]:
    """The warnings and breaches whose moment has come and that were not announced yet, in
    the order they came."""
    found: list[tuple[str, str, Alarm]] = []
    for name in TARGETS:
        target = sla.get(name) or {}
        if target.get("met_at") or target.get("running_since") is None:
            continue
        moment = format_iso(now)
        if target.get("due_at") and target["due_at"] <= moment and not target.get("breached_at"):
            found.append((target["due_at"], name, "breach"))
        elif (
            target.get("warn_at")
            and target["warn_at"] <= moment
            and not target.get("warned_at")
            and not target.get("breached_at")
        ):
            found.append((target["warn_at"], name, "warning"))
    return [(name, alarm) for _, name, alarm in sorted(found)]


def next_alarm_at(sla: Mapping[str, Any]) -> str | None:
    """The earliest warning or breach still to announce (None: none is coming)."""
    moments = []
    for name in TARGETS:
        target = sla.get(name) or {}
        if target.get("met_at") or target.get("running_since") is None:
            continue
        if target.get("warn_at") and not target.get("warned_at") and not target.get("breached_at"):
            moments.append(target["warn_at"])
        if target.get("due_at") and not target.get("breached_at"):
            moments.append(target["due_at"])
    return min(moments, default=None)


def announced(sla: Mapping[str, Any], name: str, alarm: Alarm, at: datetime) -> Stored:
    """The targets with `alarm` of `name` recorded as announced at `at` (a breach also
    counts as the warning: a breach is never followed by a late warning)."""
    stored = {k: dict(v) for k, v in sla.items()}
    target = stored[name]
    moment = format_iso(at)
    if alarm == "breach":
        target["breached_at"] = moment
        target.setdefault("warned_at", None)
    else:
        target["warned_at"] = moment
    return stored


def view(sla: Mapping[str, Any], calendar: BusinessCalendar, now: datetime) -> dict[str, Any]:
    """Each tracked target as the API shows it: due_at, met_at, breached, paused."""
    shown: dict[str, Any] = {}
    for name in TARGETS:
        target = sla.get(name)
        clock = _clock(target)
        if target is None or clock is None or clock.target_seconds is None:
            shown[name] = None  # not tracked for the case's priority (or not started)
            continue
        shown[name] = {
            "target_minutes": clock.target_seconds // 60,
            "due_at": target.get("due_at"),
            "met_at": target.get("met_at"),
            "breached": bool(target.get("breached_at")) or clock.breached(calendar, now),
            "paused": clock.paused,
        }
    return shown


def sla_state(sla: Mapping[str, Any], calendar: BusinessCalendar, now: datetime) -> str | None:
    """`breached` when an unmet target is past due, `at_risk` when an unmet one has passed
    its warning, else None: the case lists' `sla` filter, which lists the work still owed
    (a target met late shows `breached` on the case, not in this list)."""
    state = None
    for name in TARGETS:
        target = sla.get(name)
        clock = _clock(target)
        if target is None or clock is None:
            continue
        if clock.met_at is None and (target.get("breached_at") or clock.breached(calendar, now)):
            return "breached"
        if clock.met_at is None and target.get("warned_at"):
            state = "at_risk"
    return state


def _clock(stored: Mapping[str, Any] | None) -> SlaClock | None:
    if not stored:
        return None
    target = stored.get("target_seconds")
    return SlaClock(
        target_seconds=None if target is None else int(target),
        banked_seconds=int(stored.get("banked_ms") or 0) / 1000,
        running_since=_optional(stored.get("running_since")),
        met_at=_optional(stored.get("met_at")),
    )


def _stored(
    clock: SlaClock, marks: Mapping[str, Any], calendar: BusinessCalendar, percent: int
) -> dict[str, Any]:
    due, warn = clock.due_at(calendar), clock.warn_at(calendar, percent)
    return {
        "target_seconds": clock.target_seconds,
        # Whole milliseconds (the API's times have no finer digits): an integer to store.
        "banked_ms": round(clock.banked_seconds * 1000),
        "running_since": _iso(clock.running_since),
        "met_at": _iso(clock.met_at),
        "due_at": _iso(due),
        "warn_at": _iso(warn),
        "warned_at": marks.get("warned_at"),
        "breached_at": marks.get("breached_at"),
    }


def _to_the_millisecond(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else format_iso(moment)


def _optional(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None
