"""Count aggregator rows: apply rate of one replica, and count reads from Redis vs SQL.

- Events applied per second by one replica consuming ``count-aggregator.events`` through
  RabbitMQ, against the raw Lua apply rate (64 EVALSHA in flight) measured in the same run;
  the raw rate against one apply at a time.
- Count read latency (p50/p99): the tenant's counts hash from Redis (what ``GET /counts``
  reads) against ``SELECT count(*)`` and ``GROUP BY status`` over the tenant's stream rows
  (3,000,000 loaded with COPY; ``BENCH_SCALE=small``: 100,000).

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_aggregator`` with the stack's variables.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator

import asyncpg
from lookout_count_aggregator.adapters.postgres_states import grouped_counts
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore
from lookout_count_aggregator.bootstrap import bootstrap
from lookout_count_aggregator.domain.contributions import contribution_of
from lookout_count_aggregator.keys import CountKeys
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared import contracts, topology
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.redis import create_redis
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from bench.report import Row, latencies, ms, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
ROWS = 100_000 if SMALL else 3_000_000
EVENTS = 5_000 if SMALL else 20_000
READS = 200 if SMALL else 500
SQL_READS = 20 if SMALL else 30
STATUSES = ["pending", "online", "error", "disabled"]
KINDS = ["rtsp", "rtmp", "hls", "http", "file"]


def created(tenant: uuid.UUID, rng: random.Random) -> Envelope:
    state = contracts.StreamState(
        name="cam",
        kind=rng.choice(KINDS),
        status=rng.choice(STATUSES),
        enabled=True,
        tags=rng.sample(["door", "yard", "roof"], rng.randint(0, 2)),
        height=rng.choice([None, 480, 720, 1080, 2160]),
    )
    return make_envelope(
        "stream.created",
        state,
        producer="bench",
        tenant_id=tenant,
        entity_id=uuid.uuid4(),
        entity_version=1,
    )


async def raw_lua_rate(store: RedisCountStore, events: list[Envelope], in_flight: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), in_flight):
        batch = events[i : i + in_flight]
        await asyncio.gather(*(store.apply(e.id, contribution_of(e)) for e in batch))
    return len(events) / (time.perf_counter() - started)


async def broker_rate(
    settings: AggregatorSettings, broker: Broker, redis: Redis, events: list[Envelope]
) -> float:
    """Publish every event first, then time one replica draining the queue."""
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.AGGREGATOR_EVENTS, ensure=False)).purge()
    await channel.close()
    for i in range(0, len(events), 1000):
        await asyncio.gather(*(broker.publish_envelope(e) for e in events[i : i + 1000]))
    tenant = events[0].tenant_id
    assert tenant is not None
    key = CountKeys(settings.redis_prefix).tenant(tenant)
    aggregator = await bootstrap(settings, redis=redis, broker=broker)
    started = time.perf_counter()
    await aggregator.start()
    try:
        while True:  # polling Redis is what a reader does too
            if int(await redis.hget(key, "streams_total") or 0) >= len(events):
                break
            await asyncio.sleep(0.01)
        return len(events) / (time.perf_counter() - started)
    finally:
        await aggregator.stop()


def stream_rows(tenant: uuid.UUID, n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        yield (
            uuid.uuid4(),
            tenant,
            f"cam-{i}",
            "rtsp://127.0.0.1/x",
            rng.choice(KINDS),
            rng.sample(["door", "yard", "roof"], rng.randint(0, 2)),
            rng.choice(STATUSES),
            rng.choice([None, 480, 720, 1080, 2160]),
        )


async def load_streams(pool: asyncpg.Pool, tenant: uuid.UUID, rng: random.Random) -> None:
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"bench-{tenant}")
    columns = ["id", "tenant_id", "name", "url", "kind", "tags", "status", "height"]
    rows = stream_rows(tenant, ROWS, rng)
    async with pool.acquire() as conn:
        while batch := [r for _, r in zip(range(100_000), rows, strict=False)]:
            await conn.copy_records_to_table("streams", records=batch, columns=columns)
        await conn.execute("VACUUM ANALYZE streams")


async def main() -> None:
    rng = random.Random(6)
    settings = AggregatorSettings(
        redis_prefix=f"bench-agg-{uuid.uuid4().hex[:8]}:", drift_check_interval_seconds=0
    )
    # Loading, vacuuming and deleting millions of rows outlast the services' 30 s timeout.
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=4, command_timeout=1800
    )
    redis = create_redis(settings.redis_url.get_secret_value())
    broker = Broker(settings.amqp_url.get_secret_value(), producer="bench")
    await broker.connect()
    keys = CountKeys(settings.redis_prefix)
    store = RedisCountStore(redis, keys, settings.dedupe_ttl_seconds)
    tenant = uuid.uuid4()
    try:
        print(f"apply rates over {EVENTS:,} events", flush=True)
        sequential = await raw_lua_rate(
            store, [created(uuid.uuid4(), rng) for _ in range(EVENTS // 4)], 1
        )
        concurrent = await raw_lua_rate(
            store, [created(uuid.uuid4(), rng) for _ in range(EVENTS)], 64
        )
        one_tenant = uuid.uuid4()
        broker_events = [created(one_tenant, rng) for _ in range(EVENTS)]
        via_broker = await broker_rate(settings, broker, redis, broker_events)

        print(f"loading {ROWS:,} stream rows with COPY", flush=True)
        await load_streams(pool, tenant, rng)
        # The hash as the aggregator keeps it; how it got there does not change a read.
        counts = (await grouped_counts(pool, [tenant]))[tenant]
        mapping: dict[FieldT, EncodableT] = dict(counts.items())
        await redis.hset(keys.tenant(tenant), mapping=mapping)
        assert counts["streams_total"] == ROWS

        redis_reads = await latencies(lambda: redis.hgetall(keys.tenant(tenant)), READS)
        count_star = await latencies(
            lambda: pool.fetchval("SELECT count(*) FROM streams WHERE tenant_id = $1", tenant),
            SQL_READS,
        )
        group_by = await latencies(
            lambda: pool.fetch(
                "SELECT status, count(*) FROM streams WHERE tenant_id = $1 GROUP BY status", tenant
            ),
            SQL_READS,
        )
        publish_rows(via_broker, concurrent, sequential, redis_reads, count_star, group_by)
    finally:
        print("cleaning up", flush=True)
        await pool.execute("DELETE FROM tenants WHERE id = $1", tenant)
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=5000):
            await redis.delete(key)
        await broker.close()
        await redis.aclose()
        await pool.close()


def publish_rows(
    via_broker: float,
    concurrent: float,
    sequential: float,
    redis_reads: list[float],
    count_star: list[float],
    group_by: list[float],
) -> None:
    rows = [
        Row(
            "events applied/s, one replica via RabbitMQ (prefetch 64, ack each)",
            f"{via_broker:,.0f} events/s",
            "raw Lua apply, 64 in flight",
            f"{concurrent:,.0f} events/s",
            via_broker / concurrent,
        ),
        Row(
            "raw Lua apply rate, 64 in flight",
            f"{concurrent:,.0f} events/s",
            "raw Lua apply, one at a time",
            f"{sequential:,.0f} events/s",
            concurrent / sequential,
        ),
        Row(
            f"count read from Redis (HGETALL, {ROWS:,} streams)",
            ms(redis_reads),
            "SELECT count(*)",
            ms(count_star),
            percentile(count_star, 50) / percentile(redis_reads, 50),
        ),
        Row(
            f"counts by status from Redis ({ROWS:,} streams)",
            ms(redis_reads),
            "SELECT status, count(*) ... GROUP BY status",
            ms(group_by),
            percentile(group_by, 50) / percentile(redis_reads, 50),
        ),
    ]
    scale = "BENCH_SCALE=small" if SMALL else "full scale"
    publish(
        "aggregator",
        "Count aggregator: apply rate and count reads",
        rows,
        notes=f"{scale}: {EVENTS:,} events; {ROWS:,} stream rows of one tenant (COPY, then "
        f"VACUUM ANALYZE); {READS} Redis reads, {SQL_READS} of each SQL read. Ratios: apply "
        "rows are measured / baseline; read rows are SQL p50 / Redis p50.",
    )


if __name__ == "__main__":
    asyncio.run(main())
