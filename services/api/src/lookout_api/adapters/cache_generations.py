"""The read cache's generation bumps: made after every committed stream write, before its
response, and never silently dropped.

Read-your-writes rests on them: a write bumps its tenant's and the platform's generation,
and an entry stored under an older one is never served again (read_cache.py), by this api
process or any other. A bump waits ``timeout`` for Redis, longer than a read does (a write
can wait; a stale read cannot be taken back). When Redis still does not take it, or the
breaker says Redis failed a moment ago, the bump is owed:

- this process's next cache lookup bumps the epoch (every entry stale) in the same script
  as its read, so its own reads never see an entry from before the write;
- a retry task bumps the epoch as soon as Redis answers (with backoff), so other api
  processes stop serving entries from before the write too, without waiting for a read here.

One line is logged when bumps start being lost, and one when they are made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable

from lookout_shared.redis import Keys
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lookout_api.adapters.breaker import Breaker, RedisUnavailable

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.25
RETRY_MAX_SECONDS = 5.0


def epoch_key(keys: Keys) -> str:
    return keys("cache", "epoch")


def generation_key(keys: Keys, scope: uuid.UUID | None) -> str:
    return keys("cache", "gen", "platform" if scope is None else scope)


class Generations:
    def __init__(self, redis: Redis, keys: Keys, breaker: Breaker, timeout: float) -> None:
        self.redis = redis
        self.keys = keys
        self.breaker = breaker
        self.timeout = timeout
        self._lost = 0  # bumps lost so far
        self._paid = 0  # how many of them an epoch bump has covered
        self._since = 0.0
        self._retry: asyncio.Task[None] | None = None

    @property
    def owed(self) -> int:
        """Non-zero while an epoch bump is owed: a token to hand to ``paid`` once made."""
        return self._lost if self._lost > self._paid else 0

    def paid(self, token: int) -> None:
        """An epoch bump was made after the ``token``-th lost bump (a later loss stays owed)."""
        if token <= self._paid:
            return
        self._paid = token
        if not self.owed:
            log.warning(
                "read cache: lost generation bumps made up after %.1fs (epoch bumped)",
                time.monotonic() - self._since,
            )

    async def bump(self, tenants: Iterable[uuid.UUID]) -> None:
        """Bump the tenants' and the platform's generations (and the epoch, if owed)."""
        owed = self.owed

        async def op() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                if owed:
                    pipe.incr(epoch_key(self.keys))
                for tenant_id in tenants:
                    pipe.incr(generation_key(self.keys, tenant_id))
                pipe.incr(generation_key(self.keys, None))
                await pipe.execute()

        try:
            await self.breaker.call(op, self.timeout)
        except RedisUnavailable as exc:
            self._lose(exc)
            return
        self.paid(owed)

    def _lose(self, exc: RedisUnavailable) -> None:
        if not self.owed:
            self._since = time.monotonic()
            log.warning(
                "read cache: generation bump lost (%s); the epoch is bumped as soon as Redis "
                "answers, and reads here skip entries until then",
                exc,
            )
        self._lost += 1
        if self._retry is None:
            self._retry = asyncio.create_task(self._settle())

    async def _settle(self) -> None:
        """Bump the epoch until Redis takes it. It bypasses the breaker: it has its own
        backoff, and it must not wait for a request to close the breaker again."""
        delay = RETRY_FIRST_SECONDS
        try:
            while self.owed:
                await asyncio.sleep(delay)
                token = self.owed
                try:
                    async with asyncio.timeout(self.timeout):
                        await self.redis.incr(epoch_key(self.keys))
                except (RedisError, OSError, TimeoutError):
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                self.paid(token)
        finally:
            self._retry = None

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
