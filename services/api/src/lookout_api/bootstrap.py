"""The one place that builds the api's dependencies from its settings."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
from lookout_shared.broker import Broker
from lookout_shared.db import close_pool, create_pool
from lookout_shared.http import Check
from lookout_shared.http import readiness_checks as shared_readiness_checks
from lookout_shared.notified_cache import ChangeListener, TtlCache
from lookout_shared.outbox import OutboxRelay
from lookout_shared.redis import Keys, create_redis
from lookout_shared.storage import LocalStorage
from lookout_shared.tokens import TokenCodec
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection

from lookout_api import ports
from lookout_api.adapters.api_key_cache import principal_changes
from lookout_api.adapters.breaker import Breaker
from lookout_api.adapters.cache_tracking import CacheTracking
from lookout_api.adapters.connections import Connections
from lookout_api.adapters.frame_encoder import FrameEncoder
from lookout_api.adapters.frame_identities import FrameIdentities
from lookout_api.adapters.memory import MemoryWorld
from lookout_api.adapters.passwords import Argon2Passwords
from lookout_api.adapters.postgres import PostgresDatabase
from lookout_api.adapters.queue_depths import RabbitQueueDepths
from lookout_api.adapters.read_cache import ReadCache
from lookout_api.adapters.redis_reads import RedisCounts, RedisHotFrames, RedisRateCounters
from lookout_api.settings import ApiSettings

# Each stream's tenant is kept this long for the image routes.
STREAM_TENANT_SECONDS = 30.0


@dataclass(kw_only=True)
class Deps(ports.Deps):
    """The handlers' ports (ports.Deps) with the real adapters and the connections behind
    them, which entrypoints and tests reach."""

    connections: Connections
    keys: Keys
    cache: ReadCache
    key_cache: TtlCache[dict[str, object]]
    stream_tenants: TtlCache[str]
    frames: FrameEncoder
    queues: RabbitQueueDepths
    broker: Broker | None = None
    relay: OutboxRelay | None = None
    principal_changes: ChangeListener | None = None
    # Each hot stream's latest frame identity, kept while the tracking channel is in sync.
    frame_identities: FrameIdentities = field(default_factory=FrameIdentities)
    cache_tracking: CacheTracking | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        return self.connections.pool

    @pool.setter
    def pool(self, pool: asyncpg.Pool) -> None:
        self.connections.pool = pool

    @property
    def redis(self) -> Redis:
        return self.connections.redis

    @redis.setter
    def redis(self, redis: Redis) -> None:
        self.connections.redis = redis


def token_codec(settings: ApiSettings) -> TokenCodec:
    return TokenCodec(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )


async def build(settings: ApiSettings, *, with_broker: bool = True) -> Deps:
    """Open every connection. The CLI skips the broker: it only writes Postgres (the outbox)."""
    pool = await create_pool(
        settings.database_url.get_secret_value(),
        settings.db_pool_min,
        settings.db_pool_max,
        session_free=True,  # the api's LISTENs have their own connections
    )
    redis = create_redis(settings.redis_url.get_secret_value())
    keys = Keys(settings.redis_prefix)
    connections = Connections(pool, redis)
    # The one breaker every Redis caller goes through (adapters/breaker.py).
    breaker = Breaker(settings.cache_breaker_seconds)
    deps = Deps(
        settings=settings,
        connections=connections,
        keys=keys,
        codec=token_codec(settings),
        storage=LocalStorage(settings.storage_dir),
        db=PostgresDatabase(connections),
        cache=read_cache(settings, redis, keys, breaker),
        counts=RedisCounts(connections, keys, breaker, settings.counts_timeout_seconds),
        rates=RedisRateCounters(connections, keys, breaker),
        hot_frames=RedisHotFrames(connections, keys, breaker),
        queues=RabbitQueueDepths(None),
        passwords=Argon2Passwords(),
        key_cache=TtlCache(settings.api_key_cache_seconds, trusted=False),
        stream_tenants=TtlCache(STREAM_TENANT_SECONDS),
        frames=FrameEncoder(
            settings.frame_cache_max_bytes,
            settings.frame_encode_threads,
            settings.frame_max_width,
        ),
    )
    deps.cache_tracking = cache_tracking(settings, redis, deps.cache, deps.frame_identities)
    if with_broker:
        deps.principal_changes = principal_changes(
            settings.database_url.get_secret_value(), deps.key_cache
        )
        deps.broker = Broker(settings.amqp_url.get_secret_value(), producer="api")
        deps.queues.broker = deps.broker
        deps.relay = OutboxRelay(pool, deps.broker, settings.database_url.get_secret_value())
    return deps


def cache_tracking(
    settings: ApiSettings, redis: Redis, cache: ReadCache, frames: FrameIdentities
) -> CacheTracking:
    pool = redis.connection_pool
    return CacheTracking(
        dict(pool.connection_kwargs),
        issubclass(pool.connection_class, SSLConnection),
        settings.redis_prefix,
        cache.local,
        frames,
        heartbeat=settings.cache_local_heartbeat_seconds,
        timeout=settings.cache_local_timeout_seconds,
    )


def read_cache(settings: ApiSettings, redis: Redis, keys: Keys, breaker: Breaker) -> ReadCache:
    return ReadCache(
        redis,
        keys,
        breaker,
        enabled=settings.cache == "on",
        ttl=settings.cache_ttl_seconds,
        timeout=settings.cache_timeout_seconds,
        invalidate_timeout=settings.cache_invalidate_timeout_seconds,
        local_seconds=settings.cache_local_seconds if settings.cache == "on" else 0.0,
        local_max_bytes=settings.cache_local_max_bytes,
    )


def readiness_checks(deps: Deps) -> dict[str, Check]:
    return shared_readiness_checks(
        postgres=lambda: deps.pool.fetchval("SELECT 1"),
        redis=deps.redis.ping,
        rabbitmq=lambda: deps.broker,
    )


async def close(deps: Deps) -> None:
    if deps.broker is not None:
        await deps.broker.close()
    await deps.cache.close()
    deps.frames.close()
    await deps.redis.aclose()
    await close_pool(deps.pool)


class Runtime:
    """The running api: ``start`` opens every connection and starts the background work
    (the broker connection, the outbox relay, the revocation listener, the local cache's
    invalidation tracking); ``stop`` ends it and closes them again, in order."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.deps: Deps | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Deps:
        deps = self.deps = await build(self.settings)
        assert deps.broker is not None and deps.relay is not None
        assert deps.principal_changes is not None
        # The api answers while RabbitMQ is down: writes wait in the outbox, and the robust
        # connection (and so the relay) catches up once the broker is back.
        self._tasks = [
            asyncio.create_task(deps.principal_changes.run()),
            asyncio.create_task(deps.relay.run()),
            asyncio.create_task(deps.broker.connect_with_retry()),
        ]
        if deps.cache_tracking is not None:
            self._tasks.append(asyncio.create_task(deps.cache_tracking.run()))
        return deps

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.deps is not None:
            await close(self.deps)


def in_memory(settings: ApiSettings, world: MemoryWorld | None = None) -> ports.Deps:
    """The handlers' ports backed by in-memory twins (adapters/memory.py): unit tests."""
    w = world or MemoryWorld()
    return ports.Deps(
        settings=settings,
        codec=token_codec(settings),
        storage=w.storage,
        db=w.db,
        cache=w.cache,
        counts=w.counts,
        rates=w.rates,
        hot_frames=w.hot_frames,
        queues=w.queues,
        passwords=w.passwords,
        key_cache=TtlCache(settings.api_key_cache_seconds),
        stream_tenants=TtlCache(STREAM_TENANT_SECONDS),
        frames=w.frames,
    )
