"""The per-stream circuit breaker: a stream that keeps failing stops occupying ffmpeg slots.

After ``threshold`` consecutive failures the breaker opens: commands for the stream fail at
once, without ffmpeg, until ``open_until``. The first command after that is a real attempt
(half-open): a failure opens it again for twice as long (up to ``max_delay``), a success
closes it. Captures and probes share one breaker, as both use the same source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)

    def delay(self, trips: int) -> timedelta:
        """How long the breaker stays open the ``trips``-th time in a row (1-based)."""
        grown: timedelta = self.base_delay * 2 ** max(trips - 1, 0)
        return min(grown, self.max_delay)


@dataclass(frozen=True)
class BreakerState:
    failures: int = 0  # consecutive
    trips: int = 0  # consecutive openings, grows the delay
    open_until: datetime | None = None
    last_error: str | None = None

    def is_open(self, now: datetime) -> bool:
        return self.open_until is not None and now < self.open_until

    def after_failure(self, reason: str, now: datetime, policy: BreakerPolicy) -> BreakerState:
        failures = self.failures + 1
        if failures < policy.threshold:
            return replace(self, failures=failures, last_error=reason)
        trips = self.trips + 1
        return BreakerState(failures, trips, now + policy.delay(trips), reason)

    def opened_by(self, previous: BreakerState) -> bool:
        """Did the failure that led from ``previous`` to this state open the breaker?"""
        return self.trips > previous.trips

    def refusal(self) -> str:
        return (
            f"circuit open after {self.failures} consecutive failures; next attempt after "
            f"{self.open_until:%Y-%m-%dT%H:%M:%SZ} (last error: {self.last_error})"
        )


CLOSED = BreakerState()
