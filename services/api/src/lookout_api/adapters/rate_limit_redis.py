"""Fixed-window counters in Redis, shared by every api process."""

from __future__ import annotations

from redis.asyncio import Redis


async def hit(redis: Redis, key: str, window: int) -> tuple[int, int]:
    """Count one event; (events in the current window, seconds until it ends)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
    return int(count), max(int(ttl), 1)


async def current(redis: Redis, key: str) -> tuple[int, int]:
    """(events in the current window, seconds until it ends), without counting one."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = await pipe.execute()
    return int(count or 0), max(int(ttl), 1)
