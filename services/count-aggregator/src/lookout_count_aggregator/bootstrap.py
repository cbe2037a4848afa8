"""The one place that builds the aggregator's dependencies and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from lookout_shared.broker import Broker, Consumer
from lookout_shared.count_keys import CountKeys
from lookout_shared.db import close_pool, create_pool
from lookout_shared.redis import create_redis
from redis.asyncio import Redis

from lookout_count_aggregator.adapters.count_hashes import RedisCountHashes
from lookout_count_aggregator.adapters.counts_epoch import EpochStore
from lookout_count_aggregator.adapters.counts_publisher import CountsPublisher
from lookout_count_aggregator.adapters.postgres_states import PostgresStates
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore
from lookout_count_aggregator.adapters.redis_outage import RedisOutage
from lookout_count_aggregator.adapters.redis_rebuild import RedisRebuildTarget
from lookout_count_aggregator.domain.drift import Drift
from lookout_count_aggregator.entrypoints.consumer import consume_entity_events
from lookout_count_aggregator.handlers import drift
from lookout_count_aggregator.handlers.drift import DriftMonitor
from lookout_count_aggregator.handlers.heal import CountsHealer
from lookout_count_aggregator.handlers.rebuild import Rebuilder
from lookout_count_aggregator.ports import CountStore, Progress
from lookout_count_aggregator.settings import AggregatorSettings

STOP_GRACE_SECONDS = 5.0


@dataclass
class Aggregator:
    settings: AggregatorSettings
    redis: Redis
    broker: Broker
    store: CountStore
    publisher: CountsPublisher
    # Postgres, read only: by the rebuilds that heal lost counts, and the drift check.
    pool: asyncpg.Pool
    healer: CountsHealer
    outage: RedisOutage
    drift: DriftMonitor | None = None
    owns_redis: bool = True
    owns_broker: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumer: Consumer | None = None

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.publisher.run(), name="counts-publisher"))
        self.tasks.append(asyncio.create_task(self.healer.run(), name="counts-healer"))
        if self.drift is not None:
            self.tasks.append(asyncio.create_task(self.drift.run(), name="drift-check"))
        self.consumer = await consume_entity_events(
            self.broker, self.store, self.publisher, self.settings
        )

    async def stop(self) -> None:
        if self.consumer is not None:
            # The batch being applied finishes (one Lua call); one waiting for Redis, and
            # what is still buffered past the grace, is handed back.
            await self.consumer.stop(STOP_GRACE_SECONDS)
            self.consumer = None
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self.owns_broker:
            # Closing the connection stops the consumer; unacked messages are redelivered.
            await self.broker.close()
        if self.owns_redis:
            await self.redis.aclose()
        await close_pool(self.pool)


async def bootstrap(
    settings: AggregatorSettings, *, redis: Redis | None = None, broker: Broker | None = None
) -> Aggregator:
    """Build the aggregator; connections passed in are the caller's to close."""
    owns_redis, owns_broker = redis is None, broker is None
    if redis is None:
        redis = create_redis(settings.redis_url.get_secret_value())
        await redis.ping()
    if broker is None:
        broker = Broker(settings.amqp_url.get_secret_value(), producer=settings.service_name)
        await broker.connect()
    keys = CountKeys(settings.redis_prefix)
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    healer = CountsHealer(
        EpochStore(redis, keys),
        rebuilder(pool, redis, keys, settings.rebuild_chunk),
        settings.counts_epoch_check_seconds,
    )
    outage = RedisOutage(settings.redis_retry_max_seconds, on_recovered=healer.wake)
    monitor = None
    if settings.drift_check_interval_seconds > 0:
        monitor = drift_monitor(
            pool,
            redis,
            keys,
            interval=settings.drift_check_interval_seconds,
            mode=settings.drift_check_mode,
            sample=settings.drift_check_sample_tenants,
            settle_seconds=settings.drift_check_settle_seconds,
        )
    return Aggregator(
        settings=settings,
        redis=redis,
        broker=broker,
        store=RedisCountStore(redis, keys, settings.dedupe_ttl_seconds, outage),
        publisher=CountsPublisher(
            broker, settings.service_name, settings.counts_debounce_ms / 1000
        ),
        pool=pool,
        healer=healer,
        outage=outage,
        drift=monitor,
        owns_redis=owns_redis,
        owns_broker=owns_broker,
    )


def rebuilder(
    pool: asyncpg.Pool,
    redis: Redis,
    keys: CountKeys,
    chunk: int = 1000,
    progress: Progress | None = None,
) -> Rebuilder:
    """A rebuild from Postgres into Redis (the healer's, and the ``rebuild`` command's)."""
    return Rebuilder(
        PostgresStates(pool),
        RedisCountHashes(redis, keys),
        RedisRebuildTarget(redis, keys),
        EpochStore(redis, keys),
        chunk,
        progress,
    )


def drift_monitor(
    pool: asyncpg.Pool,
    redis: Redis,
    keys: CountKeys,
    *,
    interval: float,
    mode: Literal["sampled", "full"],
    sample: int,
    settle_seconds: float,
) -> DriftMonitor:
    return DriftMonitor(
        PostgresStates(pool),
        RedisCountHashes(redis, keys),
        interval=interval,
        mode=mode,
        sample=sample,
        settle_seconds=settle_seconds,
    )


async def check_drift(
    pool: asyncpg.Pool,
    redis: Redis,
    keys: CountKeys,
    tenants: Sequence[uuid.UUID] | None = None,
    settle_seconds: float = 0.0,
) -> list[Drift]:
    """The ``check`` command: the counts that differ from Postgres (see handlers/drift.py)."""
    return await drift.check(
        PostgresStates(pool), RedisCountHashes(redis, keys), tenants, settle_seconds
    )
