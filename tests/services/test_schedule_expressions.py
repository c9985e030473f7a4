"""rate(), cron() and at(): the next firing after a given time, as EventBridge computes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.local.schedule_expressions import At, Rate, parse


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_times(expression: str, start: str, count: int, zone: str | None = None) -> list[str]:
    parsed = parse(expression, zone)
    found, t = [], utc(start)
    for _ in range(count):
        nxt = parsed.next_after(t)
        assert nxt is not None
        found.append(nxt.strftime("%Y-%m-%d %H:%M %a"))
        t = nxt
    return found


def test_rate_fires_one_period_after_its_anchor_then_every_period() -> None:
    rate = Rate.parse("rate(5 minutes)").anchored(utc("2030-01-01T10:00:00"))
    assert rate.next_after(utc("2030-01-01T10:00:00")) == utc("2030-01-01T10:05:00")
    assert rate.next_after(utc("2030-01-01T10:05:00")) == utc("2030-01-01T10:10:00")
    assert rate.next_after(utc("2030-01-01T10:17:30")) == utc("2030-01-01T10:20:00")
    assert Rate.parse("rate(1 day)").period == timedelta(days=1)
    assert Rate.parse("rate(2 hours)").period == timedelta(hours=2)


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        (
            "cron(0 7 * * ? *)",
            "2030-01-01T06:59:00",
            ["2030-01-01 07:00 Tue", "2030-01-02 07:00 Wed"],
        ),
        (
            "cron(0/15 * * * ? *)",
            "2030-01-01T10:07:00",
            ["2030-01-01 10:15 Tue", "2030-01-01 10:30 Tue"],
        ),
        (
            "cron(10,40 9-10 * * ? *)",
            "2030-01-01T09:15:00",
            ["2030-01-01 09:40 Tue", "2030-01-01 10:10 Tue"],
        ),
        (
            "cron(0 9 ? * MON-FRI *)",
            "2030-01-04T10:00:00",
            ["2030-01-07 09:00 Mon", "2030-01-08 09:00 Tue"],
        ),
        (
            "cron(0 9 ? * 2,6 *)",
            "2030-01-01T00:00:00",
            ["2030-01-04 09:00 Fri", "2030-01-07 09:00 Mon"],
        ),
        (
            "cron(0 12 L * ? *)",
            "2030-01-31T13:00:00",
            ["2030-02-28 12:00 Thu", "2030-03-31 12:00 Sun"],
        ),
        (
            "cron(0 9 ? * 2#1 *)",
            "2030-01-01T00:00:00",
            ["2030-01-07 09:00 Mon", "2030-02-04 09:00 Mon"],
        ),
        (
            "cron(0 9 ? * 6L *)",
            "2030-01-01T00:00:00",
            ["2030-01-25 09:00 Fri", "2030-02-22 09:00 Fri"],
        ),
        (
            "cron(0 9 ? * L *)",
            "2030-01-01T00:00:00",
            ["2030-01-05 09:00 Sat", "2030-01-12 09:00 Sat"],
        ),
        # 15 June 2030 is a Saturday (the Friday before), 15 September a Sunday (the Monday after)
        (
            "cron(0 8 15W 6,9 ? *)",
            "2030-01-01T00:00:00",
            ["2030-06-14 08:00 Fri", "2030-09-16 08:00 Mon"],
        ),
        # 1 June 2030 is a Saturday: the nearest weekday within the month is Monday the 3rd
        (
            "cron(0 8 1W 6 ? *)",
            "2030-01-01T00:00:00",
            ["2030-06-03 08:00 Mon", "2031-06-02 08:00 Mon"],
        ),
        (
            "cron(30 23 29 FEB ? *)",
            "2030-01-01T00:00:00",
            ["2032-02-29 23:30 Sun", "2036-02-29 23:30 Fri"],
        ),
        (
            "cron(0 0 1 JAN ? 2031-2032)",
            "2030-06-01T00:00:00",
            ["2031-01-01 00:00 Wed", "2032-01-01 00:00 Thu"],
        ),
    ],
)
def test_cron(expression: str, start: str, expected: list[str]) -> None:
    assert next_times(expression, start, len(expected)) == expected


def test_cron_stops_after_its_last_year() -> None:
    assert parse("cron(0 0 1 1 ? 2030)").next_after(utc("2030-06-01T00:00:00")) is None


def test_cron_in_a_time_zone_follows_daylight_saving_time() -> None:
    # 08:00 in Paris is 07:00 UTC in winter and 06:00 UTC in summer (from 31 March 2030).
    times = next_times("cron(0 8 * * ? *)", "2030-03-29T12:00:00", 3, "Europe/Paris")
    assert times == ["2030-03-30 07:00 Sat", "2030-03-31 06:00 Sun", "2030-04-01 06:00 Mon"]


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 7 * * * *)",  # neither day field is '?'
        "cron(0 7 ? * ? *)",  # both are
        "cron(0 7 * *)",
        "cron(61 7 * * ? *)",
        "cron(0 7 LW * ? *)",
        "cron(0 9 ? * FRI-MON *)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "at(2030-01-01 10:00)",
        "every day",
    ],
)
def test_unsupported_or_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the mistake
        parse(expression)


def test_at_is_read_in_its_time_zone() -> None:
    at = parse("at(2030-07-01T09:30:00)", "America/New_York")
    assert isinstance(at, At)
    assert at.when == utc("2030-07-01T13:30:00")
    assert not at.due(utc("2030-07-01T13:29:59"))
    assert at.due(utc("2030-07-01T13:30:00"))
    assert at.next_after(utc("2030-07-01T13:30:00")) is None
