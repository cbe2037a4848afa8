"""The one place that builds the worker: real adapters by default, fakes when tests pass them.

``Runtime`` starts and stops everything; entrypoints/http.py serves it as an ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from lookout_shared.addresses import EgressPolicy
from lookout_shared.broker import Broker
from lookout_shared.db import close_pool, create_pool
from lookout_shared.outbox import OutboxRelay
from lookout_shared.redis import Keys, create_redis
from redis.asyncio import Redis

from lookout_snapshot_worker.adapters.egress import EgressShim, system_resolvers
from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.adapters.files import LocalFiles
from lookout_snapshot_worker.adapters.guard import AddressGuard
from lookout_snapshot_worker.adapters.hot_holder import ReaderConfig
from lookout_snapshot_worker.adapters.hot_lease import HotLeases, RedisHotFrames
from lookout_snapshot_worker.adapters.hot_pool import HotPool
from lookout_snapshot_worker.adapters.postgres import (
    PostgresBreakerStore,
    PostgresHotStreams,
    PostgresJobStore,
    PostgresStreamStore,
)
from lookout_snapshot_worker.adapters.process import watch_children_with_pidfd
from lookout_snapshot_worker.adapters.reaper import PostgresReaper
from lookout_snapshot_worker.domain.breaker import BreakerPolicy
from lookout_snapshot_worker.domain.tenant_slots import TenantSlots
from lookout_snapshot_worker.entrypoints.consumer import CommandConsumer
from lookout_snapshot_worker.ports import (
    BreakerStore,
    Deps,
    FileStore,
    FrameSource,
    JobStore,
    Prober,
    StreamStore,
    UrlGuard,
)
from lookout_snapshot_worker.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class Overrides:
    """Ports a test replaces; anything left None gets the real adapter."""

    jobs: JobStore | None = None
    streams: StreamStore | None = None
    frames: FrameSource | None = None
    prober: Prober | None = None
    guard: UrlGuard | None = None
    storage: FileStore | None = None
    breakers: BreakerStore | None = None


def egress_shim(settings: WorkerSettings) -> EgressShim:
    """One policy for the URL check and for every connection ffmpeg opens; raises
    EgressUnavailable when the shim is missing (captures never run unguarded)."""
    policy = EgressPolicy.build(settings.allowed_networks, system_resolvers())
    return EgressShim.load(settings.egress_shim_path, policy)


def capture_media(
    settings: WorkerSettings, egress: EgressShim, capture_slots: int | None = None
) -> FfmpegMedia:
    """Captures (warm capture children) and probes (ffprobe) with the settings' limits, every
    child held by ``egress``; ``capture_slots`` defaults to the worker's concurrency."""
    return FfmpegMedia(
        ffprobe=settings.ffprobe_path,
        timeout=settings.ffmpeg_timeout_seconds,
        max_width=settings.snapshot_max_width,
        max_pixels=settings.ffmpeg_max_pixels,
        max_memory_bytes=settings.ffmpeg_max_memory_mb * 1024 * 1024 or None,
        # Bulkheads: captures and probes never wait for each other's processes.
        capture_slots=capture_slots or settings.worker_concurrency,
        probe_slots=settings.probe_concurrency,
        environment=egress.environment(),
    )


def build_deps(
    settings: WorkerSettings,
    pool: asyncpg.Pool,
    overrides: Overrides | None = None,
    redis: Redis | None = None,
) -> Deps:
    o = overrides or Overrides()
    egress = egress_shim(settings)
    media = capture_media(settings, egress)
    storage = o.storage or LocalFiles(settings.storage_dir)
    return Deps(
        jobs=o.jobs or PostgresJobStore(pool, storage, settings.service_name),
        streams=o.streams or PostgresStreamStore(pool),
        frames=o.frames or media,
        prober=o.prober or media,
        guard=o.guard or AddressGuard(egress.policy),
        storage=storage,
        breakers=o.breakers or PostgresBreakerStore(pool),
        reaper=PostgresReaper(pool, storage),
        media_dir=settings.media_dir,
        producer=settings.service_name,
        attempts=settings.capture_attempts,
        backoff_seconds=settings.capture_backoff_seconds,
        keep_snapshots=settings.snapshots_per_stream,
        breaker=BreakerPolicy(
            threshold=settings.breaker_threshold,
            base_delay=timedelta(seconds=settings.breaker_base_delay_seconds),
            max_delay=timedelta(seconds=settings.breaker_max_delay_seconds),
        ),
        hot_frames=RedisHotFrames(redis, Keys(settings.redis_prefix)) if redis else None,
        hot_fresh_seconds=settings.hot_fresh_seconds,
        start=[media.start] if o.frames is None else [],
        stop=[media.close],
    )


def worker_id(settings: WorkerSettings) -> str:
    """Unique per replica (the service name is shared by all of them), readable by people."""
    return f"{settings.service_name}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_hot_pool(
    settings: WorkerSettings, deps: Deps, pool: asyncpg.Pool, redis: Redis
) -> HotPool:
    egress = egress_shim(settings)
    leases = HotLeases(
        redis, Keys(settings.redis_prefix), worker_id(settings), settings.hot_lease_seconds
    )
    config = ReaderConfig(
        environment=egress.environment(),
        media_dir=settings.media_dir,
        io_timeout=settings.ffmpeg_timeout_seconds,
        stall_seconds=settings.hot_stall_seconds,
        max_pixels=settings.ffmpeg_max_pixels,
        max_memory_bytes=settings.ffmpeg_max_memory_mb * 1024 * 1024 or None,
        frame_ttl=settings.hot_frame_ttl_seconds,
        backoff_seconds=settings.hot_backoff_seconds,
        backoff_max_seconds=settings.hot_backoff_max_seconds,
        error_after=settings.hot_error_after,
        publish_interval=settings.hot_publish_interval_seconds,
    )
    return HotPool(
        leases=leases, hot=PostgresHotStreams(pool), streams=deps.streams, guard=deps.guard,
        config=config, tick_seconds=settings.hot_tick_seconds,
        capacity=settings.hot_max_streams, producer=settings.service_name,
        starts_per_tick=settings.hot_starts_per_tick,
    )  # fmt: skip


class Runtime:
    """The running worker: the pool, broker, Redis, consumers and background tasks that
    ``start`` builds and ``stop`` closes again, in order."""

    def __init__(self, settings: WorkerSettings, overrides: Overrides | None = None) -> None:
        self.settings = settings
        self.overrides = overrides
        self.pool: asyncpg.Pool | None = None
        self.broker: Broker | None = None
        self.consumer: CommandConsumer | None = None
        self._connections: tuple[asyncpg.Pool, Broker, Redis] | None = None
        self._background: list[asyncio.Task[None]] = []
        self.deps: Deps | None = None  # once started

    async def start(self) -> None:
        settings = self.settings
        watch_children_with_pidfd()
        # Before anything is consumed: ffprobe or a capture child that the shim cannot hold
        # stops the worker here.
        await egress_shim(settings).verify(settings.ffprobe_path)
        dsn = settings.database_url.get_secret_value()
        # Only transaction-scoped state (advisory xact locks); the relay LISTENs on its own
        # connection: a release needs no reset query, one round trip less per job step.
        pool = await create_pool(dsn, settings.db_pool_min, settings.db_pool_max, session_free=True)
        broker = Broker(settings.amqp_url.get_secret_value(), producer=settings.service_name)
        redis = create_redis(settings.redis_url.get_secret_value())
        self._connections = (pool, broker, redis)
        try:
            await broker.connect_with_retry()
            self.pool, self.broker = pool, broker
            deps = self.deps = build_deps(settings, pool, self.overrides, redis)
            await asyncio.gather(*(start() for start in deps.start))
            if settings.hot_enabled:
                hot = build_hot_pool(settings, deps, pool, redis)
                self._background.append(asyncio.create_task(hot.run(), name="hot"))
            self._background.append(
                asyncio.create_task(OutboxRelay(pool, broker, dsn).run(), name="outbox")
            )
            self._background.append(
                asyncio.create_task(_sweep_forever(settings, pool), name="sweep")
            )
            self.consumer = CommandConsumer(
                deps,
                captures=TenantSlots(settings.worker_concurrency, settings.tenant_share),
                probes=TenantSlots(settings.probe_concurrency, settings.tenant_share),
                tenant_wait=settings.tenant_wait_seconds,
            )
            await self.consumer.start(broker, settings.worker_prefetch, settings.probe_prefetch)
        except BaseException:
            await self.stop()
            raise
        log.info("snapshot worker consuming")

    async def stop(self) -> None:
        """SIGTERM: stop taking commands, let in-flight ones finish (and ack over the
        still-open channels) within the grace period, hand back the rest."""
        if self.consumer is not None:
            await self.consumer.stop(self.settings.shutdown_grace_seconds)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.deps is not None:  # no orphan capture child
            await asyncio.gather(*(stop() for stop in self.deps.stop))
        if self._connections is None:
            return
        pool, broker, redis = self._connections
        await redis.aclose()
        await broker.close()
        await close_pool(pool)


async def _sweep_forever(settings: WorkerSettings, pool: asyncpg.Pool) -> None:
    """Every interval, delete snapshot files whose rows are gone (see adapters/reaper.py).
    Periodic work for the life of the process (a failed sweep is just the next one), not a
    retry loop."""
    reaper = PostgresReaper(pool, LocalFiles(settings.storage_dir))
    grace = timedelta(seconds=settings.orphan_grace_seconds)
    while True:
        await asyncio.sleep(settings.orphan_sweep_interval_seconds)
        try:
            await reaper.sweep(grace)
        except Exception:
            log.exception("orphan sweep failed; trying again next interval")
