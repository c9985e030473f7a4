"""One SLA target's clock (first response, next response or resolution): pure arithmetic.

A clock counts business time while it runs. Pausing it (the case waits on the customer,
or is on hold) banks what it counted; resuming starts a new run from that moment. Its due
time is then always the instant at which the run, added to what was banked, reaches the
target: one business-time addition from the run's start, whatever happened before. A
priority change swaps the target and keeps what was counted, as help desks do; being met
stops the clock for good (a reopened case resumes its resolution clock, see `reopen`).

All times are aware datetimes; the calendar decides what counts (business_time.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from crm_core.cases.business_time import (
    BusinessCalendar,
    add_business_seconds,
    business_seconds,
)


@dataclass(frozen=True)
class SlaClock:
    target_seconds: int | None  # None: counted, but with no target (its priority has none)
    banked_seconds: float = 0.0  # business time counted before `running_since`
    running_since: datetime | None = None  # None: paused, or met
    met_at: datetime | None = None

    @classmethod
    def started(cls, target_seconds: int | None, at: datetime, *, running: bool = True) -> SlaClock:
        return cls(target_seconds, 0.0, at if running else None)

    @property
    def running(self) -> bool:
        return self.running_since is not None and self.met_at is None

    @property
    def paused(self) -> bool:
        return self.met_at is None and self.running_since is None

    def elapsed(self, calendar: BusinessCalendar, at: datetime) -> float:
        """Business seconds counted up to `at`."""
        if not self.running or self.running_since is None:
            return self.banked_seconds
        return self.banked_seconds + business_seconds(calendar, self.running_since, at)

    def pause(self, calendar: BusinessCalendar, at: datetime) -> SlaClock:
        if not self.running:
            return self
        return replace(self, banked_seconds=self.elapsed(calendar, at), running_since=None)

    def resume(self, at: datetime) -> SlaClock:
        if not self.paused:
            return self
        return replace(self, running_since=at)

    def retarget(self, target_seconds: int | None) -> SlaClock:
        return self if self.met_at is not None else replace(self, target_seconds=target_seconds)

    def meet(self, calendar: BusinessCalendar, at: datetime) -> SlaClock:
        if self.met_at is not None:
            return self
        return replace(
            self, banked_seconds=self.elapsed(calendar, at), running_since=None, met_at=at
        )

    def reopen(self, at: datetime) -> SlaClock:
        """A met clock counting again from `at`, with what it had counted (a solved case
        reopened by the customer resumes its resolution time, it does not start over)."""
        if self.met_at is None:
            return self.resume(at)
        return replace(self, running_since=at, met_at=None)

    def due_at(self, calendar: BusinessCalendar) -> datetime | None:
        """When the target is reached if the clock keeps running (None while it does not)."""
        if self.target_seconds is None:
            return None
        return self._reaching(calendar, self.target_seconds)

    def warn_at(self, calendar: BusinessCalendar, percent: int) -> datetime | None:
        """When `percent` of the target is reached if the clock keeps running."""
        if self.target_seconds is None:
            return None
        return self._reaching(calendar, self.target_seconds * percent / 100)

    def breached(self, calendar: BusinessCalendar, at: datetime) -> bool:
        """Past its target: a met clock when it was met after it, any other once its count
        reaches the target (the instant a timer fires)."""
        if self.target_seconds is None:
            return False
        if self.met_at is not None:
            return self.banked_seconds > self.target_seconds
        return self.elapsed(calendar, at) >= self.target_seconds

    def _reaching(self, calendar: BusinessCalendar, seconds: float) -> datetime | None:
        if not self.running or self.running_since is None:
            return None
        left = max(0.0, seconds - self.banked_seconds)
        return add_business_seconds(calendar, self.running_since, left)
