"""EventBridge schedule expressions: `rate()`, `cron()` and Scheduler's one-time `at()`.

`next_after(t)` answers the first time strictly after `t` (an aware datetime) at which a
schedule fires, in UTC, or None if it never fires again.

cron: AWS's six fields, `minutes hours day-of-month month day-of-week year`, with `*`, `,`,
`-`, `/`, names (JAN-DEC, SUN-SAT), day-of-week 1-7 with 1 = Sunday, and `?` in exactly one
of the two day fields (AWS refuses an expression with neither). Also supported: `L` in
day-of-month (the month's last day), `nW` (the weekday nearest day n, within the month),
`L` in day-of-week (Saturday, the week's last day), `nL` (the month's last weekday n) and
`n#k` (the k-th weekday n of the month). Not supported (refused with ValueError): `LW`,
`L-n`, wrapping ranges such as FRI-MON, and `W`, `L` or `#` mixed into a list.

Time zones (Scheduler's ScheduleExpressionTimezone; rules are always UTC): the wall-clock
time is matched in the zone. A time that does not exist on the day clocks go forward runs
an hour later (its UTC offset is the one before the change); a time that happens twice on
the day clocks go back runs once, the first time.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_HORIZON_DAYS = 366 * 9  # long enough for 29 February after a century's non-leap year


class Expression(Protocol):
    @property
    def text(self) -> str: ...

    def next_after(self, t: datetime) -> datetime | None: ...


def parse(text: str, timezone: str | None = None) -> Expression:
    """A schedule expression; ValueError if it is not one AWS accepts (or not supported)."""
    zone: tzinfo = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    stripped = text.strip()
    if stripped.startswith("rate("):
        return Rate.parse(stripped)
    if stripped.startswith("cron("):
        return Cron.parse(stripped, zone)
    if stripped.startswith("at("):
        return At.parse(stripped, zone)
    raise ValueError(f"not a schedule expression: {text!r}")


@dataclass(frozen=True)
class Rate:
    text: str
    period: timedelta
    anchor: datetime | None = None  # the first period starts here (set by the caller)

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"bad rate expression: {text!r}")
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1:
            raise ValueError(f"a rate must be at least 1: {text!r}")
        return cls(text, timedelta(seconds=value * _UNIT_SECONDS[unit]))

    def anchored(self, anchor: datetime) -> Rate:
        return Rate(self.text, self.period, anchor)

    def next_after(self, t: datetime) -> datetime | None:
        anchor = self.anchor or t
        if t < anchor + self.period:
            return (anchor + self.period).astimezone(UTC)
        periods = (t - anchor) // self.period + 1
        return (anchor + periods * self.period).astimezone(UTC)


@dataclass(frozen=True)
class At:
    text: str
    when: datetime  # UTC

    @classmethod
    def parse(cls, text: str, zone: tzinfo = UTC) -> At:
        match = _AT.match(text)
        if match is None:
            raise ValueError(f"bad at expression: {text!r}")
        local = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)
        return cls(text, local.astimezone(UTC))

    def next_after(self, t: datetime) -> datetime | None:
        return self.when if self.when > t else None

    def due(self, now: datetime) -> bool:
        return self.when <= now


@dataclass(frozen=True)
class _DayOfMonth:
    any: bool = False
    days: frozenset[int] = frozenset()
    last: bool = False
    nearest_weekday: int | None = None

    def matches(self, day: date) -> bool:
        if self.any:
            return True
        last_day = calendar.monthrange(day.year, day.month)[1]
        if self.last:
            return day.day == last_day
        if self.nearest_weekday is not None:
            return day.day == _nearest_weekday(day.year, day.month, self.nearest_weekday)
        return day.day in self.days


@dataclass(frozen=True)
class _DayOfWeek:
    any: bool = False
    days: frozenset[int] = frozenset()  # 1 = Sunday ... 7 = Saturday
    last_of_month: int | None = None  # nL
    nth: tuple[int, int] | None = None  # n#k

    def matches(self, day: date) -> bool:
        if self.any:
            return True
        weekday = _aws_weekday(day)
        if self.last_of_month is not None:
            last_day = calendar.monthrange(day.year, day.month)[1]
            return weekday == self.last_of_month and day.day + 7 > last_day
        if self.nth is not None:
            return weekday == self.nth[0] and (day.day - 1) // 7 + 1 == self.nth[1]
        return weekday in self.days


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Monday is 0 in Python, 2 in AWS


def _nearest_weekday(year: int, month: int, target: int) -> int | None:
    last_day = calendar.monthrange(year, month)[1]
    if target > last_day:
        return None
    weekday = date(year, month, target).weekday()
    if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return target - 1 if target > 1 else target + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before the month's end
        return target + 1 if target < last_day else target - 2
    return target


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: _DayOfMonth
    months: frozenset[int]
    day_of_week: _DayOfWeek
    years: frozenset[int] | None
    zone: tzinfo = UTC

    @classmethod
    def parse(cls, text: str, zone: tzinfo = UTC) -> Cron:
        match = re.match(r"^cron\((.*)\)$", text.strip())
        fields = match.group(1).split() if match else []
        if len(fields) != 6:
            raise ValueError(f"a cron expression has 6 fields: {text!r}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ValueError(f"exactly one of day-of-month and day-of-week must be '?': {text!r}")
        return cls(
            text=text,
            minutes=tuple(sorted(_values(minute, 0, 59, {}))),
            hours=tuple(sorted(_values(hour, 0, 23, {}))),
            day_of_month=_day_of_month(dom),
            months=frozenset(_values(month, 1, 12, _MONTHS)),
            day_of_week=_day_of_week(dow),
            years=None if year == "*" else frozenset(_values(year, 1970, 2199, {})),
            zone=zone,
        )

    def _day_matches(self, day: date) -> bool:
        return (
            (self.years is None or day.year in self.years)
            and day.month in self.months
            and self.day_of_month.matches(day)
            and self.day_of_week.matches(day)
        )

    def next_after(self, t: datetime) -> datetime | None:
        start = (t.astimezone(self.zone) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.date()
        for _ in range(_HORIZON_DAYS):
            if self.years is not None and day.year > max(self.years):
                return None
            if self._day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        if day == start.date() and (hour, minute) < (start.hour, start.minute):
                            continue
                        local = datetime(day.year, day.month, day.day, hour, minute)
                        found = local.replace(tzinfo=self.zone).astimezone(UTC)
                        if found > t:
                            return found
            day += timedelta(days=1)
        return None


def _values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        item, stepped, step_text = part.partition("/")
        step = _number(step_text, 1, high, {}) if stepped else 1
        if item == "*":
            first, last = low, high
        elif "-" in item:
            first_text, last_text = item.split("-", 1)
            first, last = (
                _number(first_text, low, high, names),
                _number(last_text, low, high, names),
            )
            if first > last:
                raise ValueError(f"wrapping ranges are not supported: {field!r}")
        else:
            first = _number(item, low, high, names)
            last = high if stepped else first
        values.update(range(first, last + 1, step))
    return values


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not upper.isdigit():
        raise ValueError(f"unsupported cron value: {text!r}")
    value = int(upper)
    if not low <= value <= high:
        raise ValueError(f"cron value {value} is outside {low}-{high}")
    return value


def _day_of_month(field: str) -> _DayOfMonth:
    if field == "?":
        return _DayOfMonth(any=True)
    if field == "L":
        return _DayOfMonth(last=True)
    if field.endswith("W"):
        return _DayOfMonth(nearest_weekday=_number(field[:-1], 1, 31, {}))
    if "L" in field or "W" in field:
        raise ValueError(f"unsupported day-of-month: {field!r}")
    return _DayOfMonth(days=frozenset(_values(field, 1, 31, {})))


def _day_of_week(field: str) -> _DayOfWeek:
    if field == "?":
        return _DayOfWeek(any=True)
    if field == "L":
        return _DayOfWeek(days=frozenset({7}))
    if field.endswith("L") and "," not in field:
        return _DayOfWeek(last_of_month=_number(field[:-1], 1, 7, _DAYS))
    if "#" in field and "," not in field:
        weekday, nth = field.split("#", 1)
        return _DayOfWeek(nth=(_number(weekday, 1, 7, _DAYS), _number(nth, 1, 5, {})))
    if "L" in field.upper() or "#" in field:
        raise ValueError(f"unsupported day-of-week: {field!r}")
    return _DayOfWeek(days=frozenset(_values(field, 1, 7, _DAYS)))
