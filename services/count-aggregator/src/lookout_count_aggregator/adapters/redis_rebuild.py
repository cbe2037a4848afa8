"""The Redis side of a rebuild (``handlers/rebuild.py``): the lock, and the Lua scripts that
open a tenant's pending generation, write entity states into it and swap it in."""

from __future__ import annotations

import contextlib
import json

from lookout_shared.count_keys import CountKeys
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

from lookout_count_aggregator.adapters.redis_counts import SCRATCH_TTL_SECONDS, load_script
from lookout_count_aggregator.domain.contributions import Contribution

LOCK_SECONDS = 120  # renewed every chunk; a crashed rebuild frees the lock this soon


class RedisRebuildLock:
    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    async def renew(self) -> None:
        await self._lock.reacquire()

    async def release(self) -> None:
        # Redis may have lost the lock with everything else (flushed, restarted).
        with contextlib.suppress(LockNotOwnedError):
            await self._lock.release()


class RedisRebuildTarget:
    def __init__(self, redis: Redis, keys: CountKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._begin = redis.register_script(load_script("begin_rebuild.lua"))
        self._write = redis.register_script(load_script("rebuild_chunk.lua"))
        self._swap = redis.register_script(load_script("swap_tenant.lua"))
        self._sum_platform = redis.register_script(load_script("sum_platform.lua"))

    async def lock(self) -> RedisRebuildLock | None:
        lock = Lock(self._redis, self._keys.rebuild_lock(), timeout=LOCK_SECONDS)
        if not await lock.acquire(blocking=False):
            return None
        return RedisRebuildLock(lock)

    def _counts(self, tenant: str) -> list[str]:
        k = self._keys
        return [
            k.tenant(tenant),
            k.platform(),
            k.generation(tenant),
            k.pending(tenant),
            k.scratch(tenant),
        ]

    async def begin_tenant(self, tenant: str) -> str:
        return str(await self._begin(keys=self._counts(tenant)[2:]))

    async def write_states(self, tenant: str, generation: str, states: list[Contribution]) -> int:
        encoded = json.dumps([[s.version, sorted(s.fields)] for s in states])
        entity_keys = [self._keys.entity(s.entity_type, s.entity_id) for s in states]
        newer = await self._write(
            keys=[*self._counts(tenant), *entity_keys],
            args=[generation, SCRATCH_TTL_SECONDS, encoded],
        )
        return int(newer)

    async def swap(self, tenant: str, generation: str) -> None:
        await self._swap(keys=self._counts(tenant), args=[generation])

    async def sum_platform(self) -> None:
        await self._sum_platform(keys=[self._keys.platform()], args=[self._keys.tenant_pattern()])
