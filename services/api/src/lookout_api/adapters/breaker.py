"""The breaker that keeps the api fast while Redis is down: after a failure, Redis is
skipped for a while instead of paying its timeout on every request.

It is the api's one Redis-failure policy: every caller (the read cache and its generation
bumps, counts, the dashboard, login and snapshot rate limits, hot frames) goes through the
same instance, so an outage found by one is skipped by all, logged once, and reported as
the same :class:`RedisUnavailable`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from lookout_api.ports import RedisUnavailable as RedisUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Breaker:
    """After a Redis failure, skip Redis for ``cooldown`` seconds instead of paying the
    timeout on every request; the first call after that tries again."""

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return self._clock() >= self._open_until

    def trip(self, reason: str) -> None:
        if self.closed:
            log.warning("Redis unavailable, skipping it for %.1fs: %s", self.cooldown, reason)
        self._open_until = self._clock() + self.cooldown

    async def call(self, op: Callable[[], Awaitable[T]], seconds: float) -> T:
        """``op()``'s result, if Redis answers within ``seconds``."""
        if not self.closed:
            raise RedisUnavailable("Redis failed less than a moment ago", skipped=True)
        try:
            async with asyncio.timeout(seconds):
                return await op()
        except (RedisError, OSError, TimeoutError) as exc:
            self.trip(repr(exc))
            raise RedisUnavailable(repr(exc)) from exc
