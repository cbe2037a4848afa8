"""Per-user connection slots in Redis, so the cap holds across every notifier instance.

``notifier:conns:<user>`` is a sorted set of connection ids scored by when their lease ends
(Redis' own clock, so instances need not agree on the time). Each instance renews the
leases of its open connections; the slots of an instance that crashed lapse by themselves
within one lease, and a lapsed slot no longer counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from lookout_shared.redis import Keys
from redis.asyncio import Redis

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS[1]: the user's set. ARGV: connection id, limit, lease in ms.
_ACQUIRE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)

# KEYS: one user set per slot. ARGV: lease in ms, then the connection id per key.
_RENEW = (
    _NOW_MS
    + """
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return #KEYS
"""
)

RENEW_BATCH = 500  # slots per script call, so one renewal never blocks Redis for long
# Calls in flight at once: thousands of clients leaving together must queue here rather
# than exhaust the Redis connection pool that history reads share.
MAX_IN_FLIGHT = 16


class RedisConnectionSlots:
    def __init__(self, redis: Redis, prefix: str, lease_seconds: float) -> None:
        self._redis = redis
        self._key = Keys(prefix)
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)

    def _user(self, user_id: uuid.UUID) -> str:
        return self._key("notifier", "conns", user_id)

    async def acquire(self, user_id: uuid.UUID, conn_id: uuid.UUID, limit: int) -> bool:
        async with self._gate:
            granted = await self._acquire(
                keys=[self._user(user_id)], args=[str(conn_id), limit, self._lease_ms]
            )
        return bool(granted)

    async def release(self, user_id: uuid.UUID, conn_id: uuid.UUID) -> None:
        async with self._gate:
            await self._redis.zrem(self._user(user_id), str(conn_id))

    async def renew(self, held: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        for start in range(0, len(held), RENEW_BATCH):
            batch = held[start : start + RENEW_BATCH]
            await self._renew(
                keys=[self._user(user) for user, _ in batch],
                args=[self._lease_ms, *(str(conn) for _, conn in batch)],
            )
