"""The campaign sender's token bucket (crm_core/campaigns/send_rate.py), on a clock of its
own: never more than the rate allows over any span, and no waiting when it is not needed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.campaigns import send_rate
from crm_core.campaigns.send_rate import RateLimiter, per_process_rate


class Clock:
    """Time that passes only when someone sleeps, or the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: float, burst: float = 1.0) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(rate, burst, clock=clock, sleep=clock.sleep), clock


def test_the_first_send_does_not_wait_and_the_next_ones_are_spaced_evenly() -> None:
    bucket, clock = limiter(rate=4)
    moments = []
    for _ in range(9):
        bucket.acquire()
        moments.append(clock.now)
    assert moments[0] == 1000.0
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert gaps == pytest.approx([0.25] * 8)
    assert clock.now - 1000.0 == pytest.approx(2.0)


def test_time_spent_elsewhere_counts_but_idle_time_does_not_pile_up() -> None:
    bucket, clock = limiter(rate=2)
    bucket.acquire()
    clock.now += 0.3  # the SES call itself took 300 ms
    assert bucket.acquire() == pytest.approx(0.2)
    clock.now += 60  # a quiet minute
    assert bucket.acquire() == 0.0  # one token saved up...
    assert bucket.acquire() == pytest.approx(0.5)  # ...not 120


def test_a_burst_allows_that_many_at_once_then_the_rate() -> None:
    bucket, _clock = limiter(rate=10, burst=3)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.1])


@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 5),
    pauses=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_never_more_than_the_rate_over_any_window(
    rate: float, burst: int, pauses: list[float]
) -> None:
    """Over any span of t seconds, at most rate * t + burst sends (whatever happens
    between them)."""
    bucket, clock = limiter(rate, burst)
    moments = []
    for pause in pauses:
        clock.now += pause
        bucket.acquire()
        moments.append(clock.now)
    for i, start in enumerate(moments):
        for j in range(i, len(moments)):
            sends = j - i + 1
            assert sends <= rate * (moments[j] - start) + burst + 1e-6


def test_each_poller_takes_its_share_of_the_stage_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert send_rate.SENDER_CONCURRENCY == 2  # template.yaml's MaximumConcurrency
    assert per_process_rate(14) == 7
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "5")
    assert send_rate.from_environment().rate == 2.5


@pytest.mark.parametrize("value", ["", "fast", "0", "-3"])
def test_a_bad_rate_fails_at_cold_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SEND_RATE_PER_SECOND", value)
    with pytest.raises(ValueError, match="per second"):
        send_rate.from_environment()
