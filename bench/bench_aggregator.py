"""Count aggregator rows: apply rate through RabbitMQ, and count reads from Redis vs SQL.

- Events applied per second through RabbitMQ by one and by two replicas run as shipped
  (``lookout-count-aggregator serve``: default settings, INFO logs to a file, traces
  exported to a sink), against the same number of bare aio-pika consumers that only
  batch-ack the same messages (``aggregator_bare.py``: the ceiling). Both are timed from
  outside alike: from the first event counted in Redis to the last.
- The Lua apply of batches (one script call per 256 events) against one call per event.
- Count read latency (p50/p99): the tenant's counts hash from Redis (what ``GET /counts``
  reads) against ``SELECT count(*)`` and ``GROUP BY status`` over the tenant's stream rows
  (3,000,000 loaded with COPY; ``BENCH_SCALE=small``: 100,000).

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_aggregator`` with the stack's variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore
from lookout_count_aggregator.domain.contributions import contribution_of
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.count_rules import grouped_counts
from lookout_shared.counts_epoch import epoch_key
from lookout_shared.envelope import Envelope
from lookout_shared.redis import Keys, create_redis
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from bench.aggregator_data import created, load_streams
from bench.api_servers import BIN, OtlpSink, server
from bench.report import Row, latencies, ms, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
ROWS = 100_000 if SMALL else 3_000_000
EVENTS = 10_000 if SMALL else 40_000
LUA_BATCH = 256
READS = 200 if SMALL else 500
SQL_READS = 20 if SMALL else 30


async def lua_rate(store: RedisCountStore, events: list[Envelope], batch: int) -> float:
    """Events/s of the store's Lua apply, ``batch`` events per script call."""
    items = [(e.id, contribution_of(e)) for e in events]
    started = time.perf_counter()
    for i in range(0, len(items), batch):
        await store.apply_many(items[i : i + batch])
    return len(items) / (time.perf_counter() - started)


async def queue_of(broker: Broker, tenant: uuid.UUID, rng: random.Random) -> None:
    """The aggregator's queue holding EVENTS new streams of ``tenant``, and nothing else."""
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.AGGREGATOR_EVENTS, ensure=False)).purge()
    await channel.close()
    events = [created(tenant, rng) for _ in range(EVENTS)]
    for i in range(0, len(events), 1000):
        await asyncio.gather(*(broker.publish_envelope(e) for e in events[i : i + 1000]))


async def drain_rate(read: Callable[[], Awaitable[Any]], n: int) -> float:
    """Events/s from the first to the n-th, as ``read()`` (a Redis count) sees them."""
    deadline = time.monotonic() + 600
    first_at, first = 0.0, 0
    while True:
        done = int(await read() or 0)
        now = time.perf_counter()
        if done and not first_at:
            first_at, first = now, done
        if done >= n and now > first_at:
            return (n - first) / (now - first_at)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done:,} of {n:,} events after 600 s")
        await asyncio.sleep(0.002)


async def replicas_rate(
    env: dict[str, str], broker: Broker, redis: Redis, rng: random.Random, replicas: int
) -> float:
    """The shipped aggregator, ``replicas`` processes on one queue."""
    tenant = uuid.uuid4()
    await queue_of(broker, tenant, rng)
    key = CountKeys(env["LOOKOUT_REDIS_PREFIX"]).tenant(tenant)
    log = Path(env["BENCH_LOG_DIR"]) / "aggregator.log"
    argv = [str(BIN / "lookout-count-aggregator"), "serve"]
    with contextlib.ExitStack() as stack:
        # Started side by side, so they start consuming at about the same moment.
        await asyncio.gather(
            *(
                asyncio.to_thread(
                    stack.enter_context, server(argv, env, log, port_env="LOOKOUT_AGGREGATOR_PORT")
                )
                for _ in range(replicas)
            )
        )
        return await drain_rate(lambda: redis.hget(key, "streams_total"), EVENTS)


async def bare_rate(
    env: dict[str, str], broker: Broker, redis: Redis, rng: random.Random, consumers: int
) -> float:
    """``consumers`` bare aio-pika processes on the same queue with the same messages."""
    await queue_of(broker, uuid.uuid4(), rng)
    counter = f"{env['LOOKOUT_REDIS_PREFIX']}bench:bare:{uuid.uuid4().hex[:6]}"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.aggregator_bare",
            counter,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(consumers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and (await proc.stdout.readline()).strip() == b"ready"
        return await drain_rate(lambda: redis.get(counter), EVENTS)
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()


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
    sink = OtlpSink()
    env = os.environ | {
        "LOOKOUT_REDIS_PREFIX": settings.redis_prefix,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "BENCH_LOG_DIR": tempfile.mkdtemp(prefix="lookout-bench-aggregator-"),
    }
    # Counted from the events alone: no rebuild from Postgres first.
    run_id = (await redis.info("server"))["run_id"]
    await redis.hset(
        epoch_key(Keys(settings.redis_prefix)), mapping={"run_id": run_id, "id": "bench"}
    )
    try:
        print(f"apply rates over {EVENTS:,} events", flush=True)
        rates = {
            "one": await replicas_rate(env, broker, redis, rng, 1),
            "bare one": await bare_rate(env, broker, redis, rng, 1),
            "two": await replicas_rate(env, broker, redis, rng, 2),
            "bare two": await bare_rate(env, broker, redis, rng, 2),
        }
        print(rates, flush=True)
        rates |= {
            "lua batch": await lua_rate(
                store, [created(tenant, rng) for _ in range(EVENTS)], LUA_BATCH
            ),
            "lua one": await lua_rate(store, [created(tenant, rng) for _ in range(EVENTS // 4)], 1),
        }
        print(rates, flush=True)
        await redis.delete(keys.tenant(tenant), keys.platform())

        print(f"loading {ROWS:,} stream rows with COPY", flush=True)
        await load_streams(pool, tenant, ROWS, rng)
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
        publish_rows(rates, redis_reads, count_star, group_by)
    finally:
        print("cleaning up", flush=True)
        sink.close()
        await pool.execute("DELETE FROM tenants WHERE id = $1", tenant)
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=5000):
            await redis.delete(key)
        await broker.close()
        await redis.aclose()
        await pool.close()


def publish_rows(
    rates: dict[str, float],
    redis_reads: list[float],
    count_star: list[float],
    group_by: list[float],
) -> None:
    batch = AggregatorSettings().aggregator_batch

    def rate(name: str) -> str:
        return f"{rates[name]:,.0f} events/s"

    rows = [
        Row(
            f"events applied/s via RabbitMQ, one replica as shipped (batches of {batch})",
            rate("one"),
            "bare aio-pika consumer, same batch-ack",
            rate("bare one"),
            rates["one"] / rates["bare one"],
        ),
        Row(
            "events applied/s via RabbitMQ, two replicas as shipped",
            f"{rate('two')} ({rates['two'] / 2:,.0f} per replica)",
            "two bare aio-pika consumers",
            rate("bare two"),
            rates["two"] / rates["bare two"],
        ),
        Row(
            f"Lua apply, {LUA_BATCH} events per script call",
            rate("lua batch"),
            "one event per call",
            rate("lua one"),
            rates["lua batch"] / rates["lua one"],
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
        notes=f"{scale}: {EVENTS:,} stream.created events queued before the consumers start, "
        "each rate timed from the first event counted in Redis to the last (the bare "
        "consumers add each batch's size to a Redis counter, timed alike); "
        f"{ROWS:,} stream rows of one tenant (COPY, then VACUUM ANALYZE); {READS} Redis reads, "
        f"{SQL_READS} of each SQL read. Ratios: apply rows are measured / baseline; read rows "
        "are SQL p50 / Redis p50.",
    )


if __name__ == "__main__":
    asyncio.run(main())
