"""Sharing hot streams out between the worker replicas, each held by exactly one.

Every tick (``hot_tick_seconds``, at most a third of the lease) a worker: says it is alive
and learns how many workers are (adapters/hot_lease.py); renews the lease of each stream it
holds, and stops the reader of any lease it lost; reads the hot set from Postgres (so it
needs no event to notice a stream turned hot or cold, or a new URL); lets go of streams no
longer hot and of those beyond its share, ceil(hot / live workers) capped by
``hot_max_streams``; and tries to take free ones, one tenant after another, up to its share.
A new worker is counted at its first tick, so the others release their excess at their next
one and it takes them over: load spreads within two ticks.

Failover bound: a SIGKILLed holder's leases expire at most ``hot_lease_seconds`` after its
last renewal; another worker tries them within one tick; its reader then needs to start
(~0.5 s) and to decode the next keyframe (up to one keyframe interval). With the defaults
(3 s lease, 1 s tick) and a keyframe every 1-2 s a stream is published again within
about 3 + 1 + 0.5 + 2 = 6.5 s; tests measure it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.adapters.hot_holder import LeaseLost, ReaderConfig, StreamHolder
from lookout_snapshot_worker.adapters.hot_lease import HotLeases
from lookout_snapshot_worker.domain.events import stream_updated
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.hot import HotStream, plan, target
from lookout_snapshot_worker.ports import StreamStore, UrlGuard

log = logging.getLogger(__name__)


class HotStreamList(Protocol):
    async def hot_streams(self) -> Sequence[HotStream]: ...


class _Held:
    def __init__(self, holder: StreamHolder, task: asyncio.Task[None]) -> None:
        self.holder = holder
        self.task = task


class HotPool:
    def __init__(
        self,
        *,
        leases: HotLeases,
        hot: HotStreamList,
        streams: StreamStore,
        guard: UrlGuard,
        config: ReaderConfig,
        tick_seconds: float,
        capacity: int,
        starts_per_tick: int = 10,
        producer: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._leases = leases
        self._hot = hot
        self._streams = streams
        self._guard = guard
        self._config = config
        self._tick = tick_seconds
        self._capacity = capacity
        self._starts_per_tick = starts_per_tick
        self._producer = producer
        self._clock = clock
        self._held: dict[uuid.UUID, _Held] = {}

    @property
    def held(self) -> set[uuid.UUID]:
        return set(self._held)

    async def run(self) -> None:
        try:
            while True:
                began = time.monotonic()
                try:
                    await self.tick()
                except Exception:
                    log.exception("hot streams: tick failed; trying again")
                # Every tick_seconds from the start of the last: a slow tick (many readers
                # starting) does not stretch the renewal period towards the lease.
                await asyncio.sleep(max(0.0, self._tick - (time.monotonic() - began)))
        finally:
            await self.close()

    async def tick(self) -> None:
        workers = await self._leases.heartbeat()
        for sid, held in list(self._held.items()):
            if held.task.done():  # lost its lease while publishing, or failed
                await self._drop(sid)
        held_ids = list(self._held)
        for sid, renewed in zip(held_ids, await self._leases.renew_all(held_ids), strict=True):
            if not renewed:
                log.info("hot stream %s: lease lost; stopping its reader", sid)
                await self._drop(sid, release=False)
        hot = await self._hot.hot_streams()
        by_id = {s.id: s for s in hot}
        for sid, held in list(self._held.items()):
            if sid in by_id and by_id[sid].source != held.holder.stream.source:
                await self._drop(sid)  # a new URL or mode: a new reader, next tick
        todo = plan(list(self._held), hot, target(len(hot), workers, self._capacity))
        for sid in todo.release:
            await self._drop(sid)
        # At most starts_per_tick new readers a tick: each costs its start-up (an interpreter
        # and PyAV, ~0.1 s of CPU), and a hundred at once starved the loop that renews the
        # leases until they lapsed. Leases are asked for a batch at a time.
        room = min(todo.room, self._starts_per_tick)
        candidates, taken = list(todo.candidates), 0
        while taken < room and candidates:
            batch, candidates = candidates[: room - taken], candidates[room - taken :]
            answers = await self._leases.acquire_all([s.id for s in batch])
            for stream in [s for s, took in zip(batch, answers, strict=True) if took]:
                self._start(stream)
                taken += 1
        metrics.HOT_HELD.set(len(self._held))

    def _start(self, stream: HotStream) -> None:
        holder = StreamHolder(stream, self._config, self._leases, self._guard, self._report)
        task = asyncio.create_task(self._hold(holder), name=f"hot-{stream.id}")
        self._held[stream.id] = _Held(holder, task)
        log.info("hot stream %s: held by %s", stream.id, self._leases.holder)

    async def _hold(self, holder: StreamHolder) -> None:
        try:
            await holder.run()
        except LeaseLost:
            log.info("hot stream %s: another worker holds it now", holder.stream.id)
        except Exception:
            log.exception("hot stream %s: holder failed", holder.stream.id)

    async def _drop(self, stream_id: uuid.UUID, *, release: bool = True) -> None:
        held = self._held.pop(stream_id)
        held.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await held.task
        if release:
            await self._leases.release(stream_id)

    async def close(self) -> None:
        """Stop every reader and free the leases, so others take over at once."""
        for sid in list(self._held):
            with contextlib.suppress(Exception):
                await self._drop(sid)
        with contextlib.suppress(Exception):
            await self._leases.leave()

    async def _report(self, stream: HotStream, error: MediaError | None) -> None:
        """``error`` after failed reconnects, ``online`` when frames come back: the same
        guarded write and stream.updated event (through the outbox) as a probe's."""
        current = await self._streams.load(stream.id)
        if current is None or current.status == "disabled":
            return
        now = self._clock()
        if error is not None:
            updated = current.failed(error.reason, error.category, now)
        elif current.status == "error":
            updated = current.recovered(now)
        else:
            return
        if not await self._streams.save(
            updated, current.version, [stream_updated(updated, self._producer)]
        ):
            log.info("hot stream %s changed meanwhile; its status is left as is", stream.id)
