"""The one place that builds the worker: real adapters by default, fakes when tests pass them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import asyncpg
from fastapi import FastAPI
from lookout_shared.broker import Broker
from lookout_shared.db import create_pool
from lookout_shared.http import Check, add_ops_routes, install_problem_handlers
from lookout_shared.outbox import OutboxRelay
from lookout_shared.storage import LocalStorage, SnapshotStorage

from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.adapters.guard import AddressGuard
from lookout_snapshot_worker.adapters.postgres import PostgresJobStore, PostgresStreamStore
from lookout_snapshot_worker.entrypoints.consumer import CommandConsumer
from lookout_snapshot_worker.handlers import Deps
from lookout_snapshot_worker.ports import FrameSource, JobStore, Prober, StreamStore, UrlGuard
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
    storage: SnapshotStorage | None = None


def build_deps(
    settings: WorkerSettings, pool: asyncpg.Pool, overrides: Overrides | None = None
) -> Deps:
    o = overrides or Overrides()
    media = FfmpegMedia(
        ffmpeg=settings.ffmpeg_path,
        ffprobe=settings.ffprobe_path,
        timeout=settings.ffmpeg_timeout_seconds,
        max_width=settings.snapshot_max_width,
        # Shared by capture and probe: the bound is on processes, whatever they do.
        slots=asyncio.Semaphore(settings.worker_concurrency),
    )
    return Deps(
        jobs=o.jobs or PostgresJobStore(pool),
        streams=o.streams or PostgresStreamStore(pool),
        frames=o.frames or media,
        prober=o.prober or media,
        guard=o.guard or AddressGuard(settings.allowed_networks),
        storage=o.storage or LocalStorage(settings.storage_dir),
        media_dir=settings.media_dir,
        producer=settings.service_name,
        attempts=settings.capture_attempts,
        backoff_seconds=settings.capture_backoff_seconds,
    )


def create_app(settings: WorkerSettings, overrides: Overrides | None = None) -> FastAPI:
    """The worker as an ASGI app: consumers and the outbox relay live in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = settings.database_url.get_secret_value()
        pool = await create_pool(dsn, settings.db_pool_min, settings.db_pool_max)
        broker = Broker(settings.amqp_url.get_secret_value(), producer=settings.service_name)
        consumer: CommandConsumer | None = None
        relay_task: asyncio.Task[None] | None = None
        try:
            await broker.connect_with_retry()
            app.state.pool, app.state.broker = pool, broker
            relay_task = asyncio.create_task(OutboxRelay(pool, broker, dsn).run(), name="outbox")
            consumer = CommandConsumer(build_deps(settings, pool, overrides))
            await consumer.start(broker, settings.worker_prefetch)
            log.info("snapshot worker consuming")
            yield
        finally:
            if relay_task is not None:
                relay_task.cancel()
                await asyncio.gather(relay_task, return_exceptions=True)
            # Closing the broker first stops deliveries; unacked commands go back to the
            # queue. Then in-flight captures are cancelled, killing their ffmpeg.
            await broker.close()
            if consumer is not None:
                await consumer.cancel_in_flight()
            await pool.close()

    app = FastAPI(title="lookout snapshot worker", lifespan=lifespan)
    install_problem_handlers(app)

    def checks() -> Mapping[str, Check]:
        return {"postgres": lambda: _ping_postgres(app), "rabbitmq": lambda: _ping_broker(app)}

    add_ops_routes(app, checks)
    return app


async def _ping_postgres(app: FastAPI) -> None:
    pool: asyncpg.Pool = app.state.pool
    await pool.fetchval("SELECT 1")


async def _ping_broker(app: FastAPI) -> None:
    broker: Broker = app.state.broker
    if not broker.is_connected:
        raise ConnectionError("not connected to RabbitMQ")
