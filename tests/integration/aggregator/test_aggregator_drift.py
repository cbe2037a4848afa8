"""The periodic drift check: Redis against Postgres, exported as ``lookout_count_drift``."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from lookout_count_aggregator.bootstrap import bootstrap, drift_monitor, rebuilder
from lookout_count_aggregator.handlers.drift import DriftMonitor
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.drift_report import decode
from prometheus_client import REGISTRY
from redis.asyncio import Redis


async def seed(db: asyncpg.Pool, tenants: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(tenants)]
    for n, tenant in enumerate(ids):
        await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"d{tenant}")
        for _ in range(n + 1):
            await db.execute(
                """INSERT INTO streams (id, tenant_id, name, url, kind, tags, height)
                   VALUES ($1, $2, 'cam', 'rtsp://127.0.0.1/x', 'rtsp', '{door}', 1080)""",
                uuid.uuid4(),
                tenant,
            )
    return ids


def drift(scope: str, field: str) -> float | None:
    return REGISTRY.get_sample_value("lookout_count_drift", {"scope": scope, "field": field})


def monitor(db: asyncpg.Pool, redis: Redis, keys: CountKeys, **kw: object) -> DriftMonitor:
    options: dict[str, object] = {"mode": "full", "sample": 20, "settle_seconds": 0.0, **kw}
    return drift_monitor(db, redis, keys, interval=60, **options)  # type: ignore[arg-type]


async def test_full_check_exports_drift_per_field_and_back_to_zero_after_rebuild(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants = await seed(db, 3)
    await rebuilder(db, redis, keys).run()
    full = monitor(db, redis, keys)
    assert await full.check_once() == []

    await redis.hincrby(keys.tenant(tenants[0]), "streams_total", 2)
    await redis.hincrby(keys.tenant(tenants[1]), "streams_total", -1)
    await redis.hdel(keys.tenant(tenants[2]), "streams_tag:door")
    drifts = await full.check_once()
    assert {(d.scope, d.field) for d in drifts} == {
        (str(tenants[0]), "streams_total"),
        (str(tenants[1]), "streams_total"),
        (str(tenants[2]), "streams_tag:door"),
    }  # the platform hash was left alone: it matches
    assert drift("tenant", "streams_total") == 3
    assert drift("tenant", "streams_tag:*") == 3  # user-chosen tags share one label
    assert not drift("platform", "streams_total")
    assert REGISTRY.get_sample_value("lookout_count_drift_scopes") == 3

    await rebuilder(db, redis, keys).run()
    assert await full.check_once() == []
    assert drift("tenant", "streams_total") == 0
    assert drift("tenant", "streams_tag:*") == 0


async def test_sampled_check_looks_at_a_few_tenants_only(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants = await seed(db, 4)
    await rebuilder(db, redis, keys).run()
    for tenant in tenants:
        await redis.hincrby(keys.tenant(tenant), "streams_total", 1)
    sampled = monitor(db, redis, keys, mode="sampled", sample=2)
    drifts = await sampled.check_once()
    assert len({d.scope for d in drifts}) == 2
    assert all(d.scope != "platform" for d in drifts)


async def test_a_difference_that_settles_is_not_drift(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    """An event in flight: Redis catches up within the settle time."""
    keys = CountKeys(prefix)
    tenants = await seed(db, 1)
    await rebuilder(db, redis, keys).run()
    await redis.hincrby(keys.tenant(tenants[0]), "streams_total", 1)

    async def catch_up() -> None:
        await asyncio.sleep(0.1)
        await redis.hincrby(keys.tenant(tenants[0]), "streams_total", -1)

    settling = monitor(db, redis, keys, settle_seconds=0.5)
    _, drifts = await asyncio.gather(catch_up(), settling.check_once())
    assert drifts == []


async def test_the_service_runs_the_check_on_its_interval(
    db: asyncpg.Pool, redis: Redis, broker: Broker, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants = await seed(db, 1)
    await rebuilder(db, redis, keys).run()
    await redis.hincrby(keys.tenant(tenants[0]), "streams_kind:rtsp", 5)
    settings = AggregatorSettings(
        redis_prefix=prefix,
        drift_check_interval_seconds=0.05,
        drift_check_mode="sampled",
        drift_check_settle_seconds=0,
    )
    aggregator = await bootstrap(settings, redis=redis, broker=broker)
    await aggregator.start()
    try:
        for _ in range(100):
            if drift("tenant", "streams_kind:rtsp") == 5:
                break
            await asyncio.sleep(0.05)
        assert drift("tenant", "streams_kind:rtsp") == 5
    finally:
        await aggregator.stop()


async def test_each_check_leaves_its_result_for_the_dashboard_without_tenant_ids(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants = await seed(db, 2)
    await rebuilder(db, redis, keys).run()
    full = monitor(db, redis, keys)
    await full.check_once()
    matched = decode(await redis.get(keys.drift_report()))
    assert matched is not None and (matched.mode, matched.scopes, matched.fields) == ("full", 0, 0)

    await redis.hincrby(keys.tenant(tenants[0]), "streams_total", 1)
    await redis.hincrby(keys.tenant(tenants[0]), "streams_tag:door", 1)
    await full.check_once()
    raw = await redis.get(keys.drift_report())
    assert isinstance(raw, bytes)
    drifted = decode(raw)
    assert drifted is not None and (drifted.scopes, drifted.fields) == (1, 2)
    assert drifted.checked_at >= matched.checked_at
    assert str(tenants[0]).encode() not in raw
