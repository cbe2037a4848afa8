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
Only one rebuild runs at a time (a lock in Redis, renewed every chunk).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field

from lookout_count_aggregator.ports import (
    CountHashes,
    EntityStates,
    Epoch,
    Progress,
    RebuildLock,
    RebuildTarget,
)


class RebuildBusy(Exception):
    """Another rebuild holds the lock."""


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
        states: EntityStates,
        hashes: CountHashes,
        target: RebuildTarget,
        epoch: Epoch,
        chunk: int = 1000,
        progress: Progress | None = None,
    ) -> None:
        self._states = states
        self._hashes = hashes
        self._target = target
        self._epoch = epoch
        self._chunk = chunk
        self._progress = progress or NoProgress()

    async def run(self, tenant_id: uuid.UUID | None = None) -> RebuildReport:
        """Rebuild every tenant (and the platform hash), or just ``tenant_id``."""
        lock = await self._target.lock()
        if lock is None:
            raise RebuildBusy("another rebuild is running; try again when it has finished")
        try:
            return await self._run(lock, tenant_id)
        finally:
            await lock.release()

    async def _run(self, lock: RebuildLock, tenant_id: uuid.UUID | None) -> RebuildReport:
        report = RebuildReport()
        token = uuid.uuid4().hex
        # Noted before anything is read: a loss from now on keeps the new epoch out.
        run_id = await self._epoch.begin(token) if tenant_id is None else ""
        if tenant_id is not None:
            tenants = [str(tenant_id)]
        else:
            in_sql = {str(t) for t in await self._states.tenant_ids()}
            in_redis = {t async for t in self._hashes.tenants()}
            report.removed_tenants = sorted(in_redis - in_sql)
            tenants = sorted(in_sql | in_redis)
        self._progress.start(await self._states.count_rows(tenant_id))
        for tenant in tenants:
            await self._rebuild_tenant(lock, tenant, report)
            report.tenants += 1
            await lock.renew()
        if tenant_id is None:
            # The platform hash as the exact sum of the tenant hashes, whatever it drifted to.
            await self._target.sum_platform()
            if await self._epoch.finish(token, run_id):
                report.epoch = token
        return report

    async def _rebuild_tenant(self, lock: RebuildLock, tenant: str, report: RebuildReport) -> None:
        # The pending generation opens before the snapshot is taken: every event applied
        # after the snapshot is then seen by the scratch counts.
        generation = await self._target.begin_tenant(tenant)
        states = self._states.tenant_states(uuid.UUID(tenant), self._chunk)
        async with contextlib.aclosing(states):
            async for batch in states:
                report.newer_in_redis += await self._target.write_states(tenant, generation, batch)
                report.entities += len(batch)
                await self._progress.advance(len(batch))
                await lock.renew()
        await self._target.swap(tenant, generation)
