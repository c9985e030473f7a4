"""The campaign sender's pace: at most the stage's sending rate, shared by its pollers.

SES refuses mail above the account's sending rate (TooManyRequestsException). The stage's
rate (`SEND_RATE_PER_SECOND`, template.yaml's StageSettings) is for the whole stage; the
sender's SQS event source runs at most `SENDER_CONCURRENCY` invocations at once
(`MaximumConcurrency`), each in its own execution environment, so each process allows its
share, `rate / SENDER_CONCURRENCY`, with a token bucket of its own. No coordination between
processes is needed, and no table item is written per email to count them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

# template.yaml's ScalingConfig.MaximumConcurrency of CampaignSenderFunction's SQS events:
# change both together.
SENDER_CONCURRENCY = 2
RATE_VARIABLE = "SEND_RATE_PER_SECOND"


class RateLimiter:
    """A token bucket: `rate` acquisitions per second on average, at most `burst` at once.

    The bucket starts full and refills continuously; `acquire` takes one token, sleeping
    until one is there. The clock and the sleep are injected so that tests need no time.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"a sending rate must be above 0 per second, not {rate}")
        if burst < 1:
            raise ValueError("a burst of less than one token would never send")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, waiting for it if need be; the seconds waited."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        wait = (1 - self._tokens) / self.rate
        self._sleep(wait)
        # The token that accrued during the wait is the one taken: the bucket is empty at
        # the moment the wait ends (an oversleep is credited on the next acquire).
        self._tokens = 0.0
        self._last = now + wait
        return wait


def per_process_rate(stage_rate: float, concurrency: int = SENDER_CONCURRENCY) -> float:
    """Each poller's share of the stage's rate."""
    if concurrency < 1:
        raise ValueError("at least one poller")
    return stage_rate / concurrency


def from_environment() -> RateLimiter:
    """The limiter of this process, from SEND_RATE_PER_SECOND (a missing or bad value fails
    the cold start, not the first send)."""
    raw = os.environ.get(RATE_VARIABLE, "")
    try:
        stage_rate = float(raw)
    except ValueError:
        message = f"{RATE_VARIABLE} must be a number of emails per second, not {raw!r}"
        raise ValueError(message) from None
    return RateLimiter(per_process_rate(stage_rate))
