"""The one place that builds the api's dependencies from its settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
from lookout_shared.broker import Broker
from lookout_shared.db import close_pool, create_pool
from lookout_shared.http import Check
from lookout_shared.outbox import OutboxRelay
from lookout_shared.redis import Keys, create_redis
from lookout_shared.storage import LocalStorage, SnapshotStorage
from lookout_shared.tokens import TokenCodec
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection

from lookout_api.adapters.api_key_cache import PrincipalChanges, TtlCache
from lookout_api.adapters.cache_tracking import CacheTracking
from lookout_api.adapters.frame_encoder import FrameEncoder
from lookout_api.adapters.read_cache import Breaker, ReadCache
from lookout_api.settings import ApiSettings


@dataclass
class Deps:
    settings: ApiSettings
    pool: asyncpg.Pool
    redis: Redis
    keys: Keys
    codec: TokenCodec
    storage: SnapshotStorage
    cache: ReadCache
    broker: Broker | None = None
    relay: OutboxRelay | None = None
    # API key lookups (hash -> principal fields), trusted while principal_changes listens.
    key_cache: TtlCache[dict[str, object]] = field(default_factory=lambda: TtlCache(0))
    principal_changes: PrincipalChanges | None = None
    # Latest-frame images (latest.jpg), and each stream's tenant for the image routes (it
    # never changes, so a stale entry can only name the right tenant of a deleted stream).
    frames: FrameEncoder = field(default_factory=lambda: FrameEncoder(0, 1, 1920))
    stream_tenants: TtlCache[str] = field(default_factory=lambda: TtlCache(30.0))
    cache_tracking: CacheTracking | None = None
    # The dashboard's last RabbitMQ queue depths (monotonic time, depths), and its probe lock.
    broker_state: tuple[float, dict[str, int]] | None = None
    broker_probe: asyncio.Lock = field(default_factory=asyncio.Lock)


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
    deps = Deps(
        settings=settings,
        pool=pool,
        redis=redis,
        keys=keys,
        codec=token_codec(settings),
        storage=LocalStorage(settings.storage_dir),
        cache=read_cache(settings, redis, keys),
        key_cache=TtlCache(settings.api_key_cache_seconds, trusted=False),
        frames=FrameEncoder(
            settings.frame_cache_max_bytes,
            settings.frame_encode_threads,
            settings.frame_max_width,
        ),
    )
    deps.cache_tracking = cache_tracking(settings, redis, deps.cache)
    if with_broker:
        deps.principal_changes = PrincipalChanges(
            settings.database_url.get_secret_value(), deps.key_cache
        )
        deps.broker = Broker(settings.amqp_url.get_secret_value(), producer="api")
        deps.relay = OutboxRelay(pool, deps.broker, settings.database_url.get_secret_value())
    return deps


def cache_tracking(settings: ApiSettings, redis: Redis, cache: ReadCache) -> CacheTracking:
    pool = redis.connection_pool
    return CacheTracking(
        dict(pool.connection_kwargs),
        issubclass(pool.connection_class, SSLConnection),
        settings.redis_prefix,
        cache.local,
        heartbeat=settings.cache_local_heartbeat_seconds,
        timeout=settings.cache_local_timeout_seconds,
    )


def read_cache(settings: ApiSettings, redis: Redis, keys: Keys) -> ReadCache:
    return ReadCache(
        redis,
        keys,
        Breaker(settings.cache_breaker_seconds),
        enabled=settings.cache == "on",
        ttl=settings.cache_ttl_seconds,
        timeout=settings.cache_timeout_seconds,
        invalidate_timeout=settings.cache_invalidate_timeout_seconds,
        local_seconds=settings.cache_local_seconds if settings.cache == "on" else 0.0,
        local_max_bytes=settings.cache_local_max_bytes,
    )


def readiness_checks(deps: Deps) -> dict[str, Check]:
    async def broker() -> None:
        if deps.broker is None or not deps.broker.is_connected:
            raise ConnectionError("not connected to RabbitMQ")

    return {
        "postgres": lambda: deps.pool.fetchval("SELECT 1"),
        "redis": deps.redis.ping,
        "rabbitmq": broker,
    }


async def close(deps: Deps) -> None:
    if deps.broker is not None:
        await deps.broker.close()
    await deps.cache.close()
    deps.frames.close()
    await deps.redis.aclose()
    await close_pool(deps.pool)
