"""The one place that builds the worker: real adapters by default, fakes when tests pass them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from fastapi import FastAPI
from lookout_shared.addresses import EgressPolicy
from lookout_shared.broker import Broker
from lookout_shared.db import close_pool, create_pool
from lookout_shared.http import Check, add_ops_routes, install_problem_handlers
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


def build_deps(
    settings: WorkerSettings,
    pool: asyncpg.Pool,
    overrides: Overrides | None = None,
    redis: Redis | None = None,
) -> Deps:
    o = overrides or Overrides()
    egress = egress_shim(settings)
    media = FfmpegMedia(
        ffmpeg=settings.ffmpeg_path,
        ffprobe=settings.ffprobe_path,
        timeout=settings.ffmpeg_timeout_seconds,
        max_width=settings.snapshot_max_width,
        max_pixels=settings.ffmpeg_max_pixels,
        max_memory_bytes=settings.ffmpeg_max_memory_mb * 1024 * 1024 or None,
        # Bulkheads: captures and probes never wait for each other's processes.
        capture_slots=asyncio.Semaphore(settings.worker_concurrency),
        probe_slots=asyncio.Semaphore(settings.probe_concurrency),
        environment=egress.environment(),
    )
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
    )  # fmt: skip


def create_app(settings: WorkerSettings, overrides: Overrides | None = None) -> FastAPI:
    """The worker as an ASGI app: consumers and the outbox relay live in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watch_children_with_pidfd()
        # Before anything is consumed: a binary the shim cannot hold stops the worker here.
        await egress_shim(settings).verify(settings.ffmpeg_path, settings.ffprobe_path)
        dsn = settings.database_url.get_secret_value()
        pool = await create_pool(dsn, settings.db_pool_min, settings.db_pool_max)
        broker = Broker(settings.amqp_url.get_secret_value(), producer=settings.service_name)
        redis = create_redis(settings.redis_url.get_secret_value())
        consumer: CommandConsumer | None = None
        background: list[asyncio.Task[None]] = []
        try:
            await broker.connect_with_retry()
            app.state.pool, app.state.broker = pool, broker
            deps = build_deps(settings, pool, overrides, redis)
            if settings.hot_enabled:
                hot = build_hot_pool(settings, deps, pool, redis)
                background.append(asyncio.create_task(hot.run(), name="hot"))
            background.append(
                asyncio.create_task(OutboxRelay(pool, broker, dsn).run(), name="outbox")
            )
            background.append(asyncio.create_task(_sweep_forever(settings, pool), name="sweep"))
            consumer = CommandConsumer(
                deps,
                captures=TenantSlots(settings.worker_concurrency, settings.tenant_share),
                probes=TenantSlots(settings.probe_concurrency, settings.tenant_share),
                tenant_wait=settings.tenant_wait_seconds,
            )
            app.state.consumer = consumer
            await consumer.start(broker, settings.worker_prefetch, settings.probe_prefetch)
            log.info("snapshot worker consuming")
            yield
        finally:
            # SIGTERM: stop taking commands, let in-flight ones finish (and ack over the
            # still-open channels) within the grace period, hand back the rest.
            if consumer is not None:
                await consumer.stop(settings.shutdown_grace_seconds)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await redis.aclose()
            await broker.close()
            await close_pool(pool)

    app = FastAPI(title="lookout snapshot worker", lifespan=lifespan)
    install_problem_handlers(app)

    def checks() -> Mapping[str, Check]:
        return {"postgres": lambda: _ping_postgres(app), "rabbitmq": lambda: _ping_broker(app)}

    add_ops_routes(app, checks)
    return app


async def _sweep_forever(settings: WorkerSettings, pool: asyncpg.Pool) -> None:
    """Every interval, delete snapshot files whose rows are gone (see adapters/reaper.py)."""
    reaper = PostgresReaper(pool, LocalFiles(settings.storage_dir))
    grace = timedelta(seconds=settings.orphan_grace_seconds)
    while True:
        await asyncio.sleep(settings.orphan_sweep_interval_seconds)
        try:
            await reaper.sweep(grace)
        except Exception:
            log.exception("orphan sweep failed; trying again next interval")


async def _ping_postgres(app: FastAPI) -> None:
    pool: asyncpg.Pool = app.state.pool
    await pool.fetchval("SELECT 1")


async def _ping_broker(app: FastAPI) -> None:
    broker: Broker = app.state.broker
    if not broker.is_connected:
        raise ConnectionError("not connected to RabbitMQ")
