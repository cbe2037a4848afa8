"""Who holds which hot stream: a lease per stream in Redis, with fencing.

Why a Redis lease: Redis is already the place hot frames go, a lease is one key
(``SET NX PX`` with the worker's id), and it expires by itself when its holder stops renewing,
whatever killed it (SIGKILL, a frozen VM, a cut network), where a Postgres advisory lock
lives as long as a TCP connection the kernel may keep half-open for minutes after a network
cut. The holder renews every tick (a third of the lease or less) with a compare-and-expire;
a renewal that finds another id (or none) means the lease was lost: the worker stops that
stream's reader at once. Fencing: a frame is written only by a script that checks, in the
same atomic step, that the lease still names the writer, so a holder that lost its lease
(paused past the expiry, then woken) cannot overwrite the new holder's frames.

Live workers are members of one sorted set scored by their last heartbeat; a member not seen
for a lease period no longer counts (and is removed), so each worker can compute its share.
"""

from __future__ import annotations

import time
import uuid
from typing import cast

from lookout_shared.hot_frames import HotFrame, frame_key, from_fields, to_fields
from lookout_shared.redis import Keys
from redis.asyncio import Redis

# Every lease of one holder in one round trip: 1 for each renewed, 0 for each lost.
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then
    out[i] = redis.call('pexpire', key, ARGV[2])
  else
    out[i] = 0
  end
end
return out
"""
# Take every free lease asked for in one round trip: 1 for each taken, 0 for each held.
_ACQUIRE = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return out
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
# KEYS: lease, frame. ARGV: holder, ttl ms, then field/value pairs.
_PUBLISH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('hset', KEYS[2], unpack(ARGV, 3))
redis.call('pexpire', KEYS[2], ARGV[2])
return 1
"""


class HotLeases:
    def __init__(self, redis: Redis, keys: Keys, holder: str, lease_seconds: float) -> None:
        self.holder = holder
        self._redis = redis
        self._keys = keys
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._renew = redis.register_script(_RENEW)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._publish = redis.register_script(_PUBLISH)

    def _lease(self, stream_id: uuid.UUID) -> str:
        return self._keys("hot", "lease", stream_id)

    async def acquire(self, stream_id: uuid.UUID) -> bool:
        return (await self.acquire_all([stream_id]))[0]

    async def acquire_all(self, stream_ids: list[uuid.UUID]) -> list[bool]:
        """Take the free ones of these leases in one round trip; True where taken. A round
        trip each let the readers started meanwhile hold the tick past the lease."""
        if not stream_ids:
            return []
        keys = [self._lease(sid) for sid in stream_ids]
        taken = await self._acquire(keys=keys, args=[self.holder, self._lease_ms])
        return [bool(t) for t in cast(list[int], taken)]

    async def renew(self, stream_id: uuid.UUID) -> bool:
        return (await self.renew_all([stream_id]))[0]

    async def renew_all(self, stream_ids: list[uuid.UUID]) -> list[bool]:
        """Renew every lease held in one round trip (a round trip each made a tick of a
        hundred streams outlast the lease on a busy worker); True where still held."""
        if not stream_ids:
            return []
        keys = [self._lease(sid) for sid in stream_ids]
        renewed = await self._renew(keys=keys, args=[self.holder, self._lease_ms])
        return [bool(r) for r in cast(list[int], renewed)]

    async def release(self, stream_id: uuid.UUID) -> None:
        await self._release(keys=[self._lease(stream_id)], args=[self.holder])

    async def holder_of(self, stream_id: uuid.UUID) -> str | None:
        value = await self._redis.get(self._lease(stream_id))
        return None if value is None else cast(bytes, value).decode()

    async def publish(self, stream_id: uuid.UUID, frame: HotFrame, ttl_seconds: float) -> bool:
        """Write the frame only while this worker holds the stream (fencing)."""
        pairs = [v for item in to_fields(frame).items() for v in item]
        keys = [self._lease(stream_id), frame_key(self._keys, stream_id)]
        args = [self.holder, max(1, int(ttl_seconds * 1000)), *pairs]
        return bool(await self._publish(keys=keys, args=args))

    async def heartbeat(self) -> int:
        """Say this worker is alive; how many workers are (this one included)."""
        now = time.time()
        workers = self._keys("hot", "workers")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(workers, {self.holder: now})
            pipe.zremrangebyscore(workers, "-inf", now - self._lease_ms / 1000)
            pipe.zcard(workers)
            results = await pipe.execute()
        return max(int(results[-1]), 1)

    async def leave(self) -> None:
        await self._redis.zrem(self._keys("hot", "workers"), self.holder)


class RedisHotFrames:
    """The HotFrames port: the latest frame of a stream, if one is published."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def latest(self, stream_id: uuid.UUID) -> HotFrame | None:
        raw = await self._redis.hgetall(frame_key(self._keys, stream_id))
        return from_fields(cast(dict[bytes, bytes], raw)) if raw else None
