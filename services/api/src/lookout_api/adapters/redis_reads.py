"""The Redis ports of the handlers (ports.CountsReader, RateCounters, HotFrames), each call
through the one breaker (breaker.py) within its time bound."""

from __future__ import annotations

import uuid
from typing import Any

from lookout_shared.drift_report import decode as decode_drift
from lookout_shared.drift_report import report_key
from lookout_shared.hot_frames import HotFrame
from lookout_shared.redis import Keys

from lookout_api.adapters import counts_redis, hot_frames_redis, rate_limit_redis
from lookout_api.adapters.breaker import Breaker
from lookout_api.adapters.connections import Connections
from lookout_api.ports import DashboardValues

# Rate counters and hot frames wait no longer than this for Redis, then the caller goes on
# without (a rate limit lets the request by, a frame comes from the snapshot).
QUICK_SECONDS = 0.5


def snapshot_rate_key(tenant_id: uuid.UUID) -> tuple[object, ...]:
    """The tenant's snapshot requests this minute (a RateCounters key)."""
    return ("ratelimit", "snapshots", tenant_id)


class RedisCounts:
    def __init__(
        self, connections: Connections, keys: Keys, breaker: Breaker, timeout: float
    ) -> None:
        self._connections, self._keys, self._breaker = connections, keys, breaker
        self._timeout = timeout

    async def counts(self, tenant_id: uuid.UUID | None) -> dict[str, int] | None:
        redis, keys = self._connections.redis, self._keys
        return await self._breaker.call(
            lambda: counts_redis.read_counts(redis, keys, tenant_id), self._timeout
        )

    async def fields(
        self, tenant_id: uuid.UUID | None, *names: str
    ) -> tuple[str, list[int | None]] | None:
        redis, keys = self._connections.redis, self._keys
        return await self._breaker.call(
            lambda: counts_redis.read_fields(redis, keys, tenant_id, *names), self._timeout
        )

    async def dashboard(self, tenant_id: uuid.UUID | None) -> DashboardValues:
        """One pipelined round trip."""
        redis, keys = self._connections.redis, self._keys

        async def read() -> list[Any]:
            async with redis.pipeline(transaction=False) as pipe:
                counts_redis.queue_counts(keys, tenant_id, pipe)
                pipe.get(report_key(keys))
                if tenant_id is not None:
                    pipe.get(keys(*snapshot_rate_key(tenant_id)))
                return await pipe.execute()

        replies = await self._breaker.call(read, self._timeout)
        # Counts Redis cannot vouch for (it lost state) count as none.
        return DashboardValues(
            counts=counts_redis.decode_counts(replies[0]) or {},
            snapshot_requests=int(replies[2] or 0) if tenant_id is not None else None,
            drift=decode_drift(replies[1]),
        )


class RedisRateCounters:
    def __init__(self, connections: Connections, keys: Keys, breaker: Breaker) -> None:
        self._connections, self._keys, self._breaker = connections, keys, breaker

    async def hit(self, key: tuple[object, ...], window: int) -> tuple[int, int]:
        redis, name = self._connections.redis, self._keys(*key)
        return await self._breaker.call(
            lambda: rate_limit_redis.hit(redis, name, window), QUICK_SECONDS
        )

    async def current(self, key: tuple[object, ...]) -> tuple[int, int]:
        redis, name = self._connections.redis, self._keys(*key)
        return await self._breaker.call(
            lambda: rate_limit_redis.current(redis, name), QUICK_SECONDS
        )


class RedisHotFrames:
    def __init__(self, connections: Connections, keys: Keys, breaker: Breaker) -> None:
        self._connections, self._keys, self._breaker = connections, keys, breaker

    async def latest(self, stream_id: uuid.UUID) -> HotFrame | None:
        redis, keys = self._connections.redis, self._keys
        return await self._breaker.call(
            lambda: hot_frames_redis.latest(redis, keys, stream_id), QUICK_SECONDS
        )
