"""Rebuild the counts from Postgres while events keep flowing, and end exact.

Per tenant: open a *pending generation* in Redis (so every event applied from now on also
moves the rebuild's scratch counts), then read the tenant's rows in one repeatable-read
snapshot, in chunks, and write each entity's state into the pending generation (a Lua
script per chunk; a state Redis already holds at a newer version wins). Finally swap the
scratch counts in and make the pending generation current, atomically. States of the old
generation that the rebuild did not see (an entity deleted before the snapshot whose
deletion event is still on its way, or any drift) stop counting at the swap. See
``adapters/apply_events.lua`` for the generation rules.

A full rebuild (every tenant) also writes a new counts epoch when it ends, if Redis lost
nothing while it ran (``adapters/counts_epoch.py``): from then on the api trusts the counts.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from lookout_shared.count_keys import CountKeys
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

from lookout_count_aggregator.adapters.counts_epoch import EpochStore
from lookout_count_aggregator.adapters.postgres_states import (
    count_rows,
    tenant_ids,
    tenant_states,
)
from lookout_count_aggregator.adapters.redis_counts import SCRATCH_TTL_SECONDS, load_script

LOCK_SECONDS = 120  # renewed every chunk; a crashed rebuild frees the lock this soon


class RebuildBusy(Exception):
    """Another rebuild holds the lock."""


class Progress(Protocol):
    """Told the total, then each chunk written; awaited, so it may pause the rebuild."""

    def start(self, total: int) -> None: ...

    async def advance(self, entities: int) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    async def advance(self, entities: int) -> None:
        pass


@dataclass
class RebuildReport:
    tenants: int = 0
    entities: int = 0
    newer_in_redis: int = 0
    removed_tenants: list[str] = field(default_factory=list)
    # The counts epoch a full rebuild wrote; None: a tenant's rebuild, or Redis lost state
    # while the rebuild ran (the counts are not trusted yet).
    epoch: str | None = None


class Rebuilder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        keys: CountKeys,
        chunk: int = 1000,
        progress: Progress | None = None,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._chunk = chunk
        self._progress = progress or NoProgress()
        self._begin = redis.register_script(load_script("begin_rebuild.lua"))
        self._write = redis.register_script(load_script("rebuild_chunk.lua"))
        self._swap = redis.register_script(load_script("swap_tenant.lua"))
        self._sum_platform = redis.register_script(load_script("sum_platform.lua"))
        self._epoch = EpochStore(redis, keys)

    async def run(self, tenant_id: uuid.UUID | None = None) -> RebuildReport:
        """Rebuild every tenant (and the platform hash), or just ``tenant_id``."""
        lock = Lock(self._redis, self._keys.rebuild_lock(), timeout=LOCK_SECONDS)
        if not await lock.acquire(blocking=False):
            raise RebuildBusy("another rebuild is running; try again when it has finished")
        try:
            return await self._run(lock, tenant_id)
        finally:
            # Redis may have lost the lock with everything else (flushed, restarted).
            with contextlib.suppress(LockNotOwnedError):
                await lock.release()

    async def _run(self, lock: Lock, tenant_id: uuid.UUID | None) -> RebuildReport:
        report = RebuildReport()
        token = uuid.uuid4().hex
        # Noted before anything is read: a loss from now on keeps the new epoch out.
        run_id = await self._epoch.begin(token) if tenant_id is None else ""
        if tenant_id is not None:
            tenants = [str(tenant_id)]
        else:
            in_sql = {str(t) for t in await tenant_ids(self._pool)}
            in_redis = {t async for t in self._redis_tenants()}
            report.removed_tenants = sorted(in_redis - in_sql)
            tenants = sorted(in_sql | in_redis)
        self._progress.start(await count_rows(self._pool, tenant_id))
        for tenant in tenants:
            await self._rebuild_tenant(lock, tenant, report)
            report.tenants += 1
            await lock.reacquire()
        if tenant_id is None:
            # The platform hash as the exact sum of the tenant hashes, whatever it drifted to.
            await self._sum_platform(
                keys=[self._keys.platform()], args=[self._keys.tenant_pattern()]
            )
            if await self._epoch.finish(token, run_id):
                report.epoch = token
        return report

    async def _rebuild_tenant(self, lock: Lock, tenant: str, report: RebuildReport) -> None:
        k = self._keys
        counts = [k.tenant(tenant), k.platform(), k.generation(tenant), k.pending(tenant)]
        counts.append(k.scratch(tenant))
        # The pending generation opens before the snapshot is taken: every event applied
        # after the snapshot is then seen by the scratch counts.
        pending = str(await self._begin(keys=counts[2:]))
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            async for batch in tenant_states(conn, uuid.UUID(tenant), self._chunk):
                states = json.dumps([[s.version, sorted(s.fields)] for s in batch])
                entity_keys = [k.entity(s.entity_type, s.entity_id) for s in batch]
                newer = await self._write(
                    keys=[*counts, *entity_keys], args=[pending, SCRATCH_TTL_SECONDS, states]
                )
                report.newer_in_redis += int(newer)
                report.entities += len(batch)
                await self._progress.advance(len(batch))
                await lock.reacquire()
        await self._swap(keys=counts, args=[pending])

    async def _redis_tenants(self) -> AsyncIterator[str]:
        prefix = self._keys.tenant("")
        async for raw in self._redis.scan_iter(match=self._keys.tenant_pattern(), count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            yield key.removeprefix(prefix)
