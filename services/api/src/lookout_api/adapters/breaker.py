"""The breaker that keeps the api fast while Redis is down: after a failure, Redis is
skipped for a while instead of paying its timeout on every request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis failed, was too slow, or is skipped because it failed a moment ago."""

    def __init__(self, reason: str, *, skipped: bool = False) -> None:
        super().__init__(reason)
        self.skipped = skipped


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
