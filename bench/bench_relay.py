"""Event pipeline rows: the outbox relay's burst rate, and how soon a write shows in the counts.

- Relay: a 10,000-event burst committed in one transaction, from the commit until every row
  is confirmed by RabbitMQ and marked sent, with the relay as the api runs it
  (``OutboxRelay`` with its defaults, woken by NOTIFY, tracing as compose configures it),
  against aio-pika publishing the same messages with confirms, the same number in flight.
- Write → count visible, with the api (its relay inside) and the aggregator run as shipped
  (``lookout-api``, ``lookout-count-aggregator serve``: default settings, INFO logs to a
  file, traces exported to a sink): single stream creates (``POST /api/v1/streams``, one at
  a time) until the tenant's count in Redis includes each, against the create's own
  response time; and a 2,500-stream burst (five concurrent ``POST /api/v1/streams:bulk`` of
  500) until the counts include all of it, against the same burst with the aggregator
  applying one event per Lua call and ack (``LOOKOUT_AGGREGATOR_BATCH=1``).

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_relay`` with the stack's variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aio_pika
import asyncpg
import httpx
from lookout_api.bootstrap import token_codec
from lookout_api.settings import ApiSettings
from lookout_shared import outbox, telemetry, topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import CaptureSnapshot
from lookout_shared.count_keys import CountKeys
from lookout_shared.counts_epoch import epoch_key
from lookout_shared.db import create_pool
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.redis import Keys, create_redis
from redis.asyncio import Redis

from bench.api_servers import BIN, OtlpSink, server
from bench.report import Row, ms, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
BURST = 10_000
WRITES = 100 if SMALL else 300
BULK_REQUESTS, BULK_ITEMS = 5, 500


def capture() -> Envelope:
    job = uuid.uuid4()
    return make_envelope(
        "snapshot.capture",
        CaptureSnapshot(job_id=job, stream_id=uuid.uuid4()),
        producer="bench",
        tenant_id=uuid.uuid4(),
        entity_id=job,
        entity_version=1,
    )


async def purge(broker: Broker) -> None:
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)).purge()
    await channel.close()


async def relay_burst(pool: asyncpg.Pool, broker: Broker, dsn: str) -> float:
    """Seconds from the commit of BURST outbox rows until the relay marked all sent."""
    await purge(broker)
    relay = outbox.OutboxRelay(pool, broker, dsn)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(1)  # listening
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                await outbox.enqueue(conn, *(capture() for _ in range(BURST)))
            committed = time.perf_counter()
            while True:
                done = time.perf_counter()
                if not await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                ):
                    return done - committed
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await purge(broker)


async def confirmed_publishes(url: str) -> float:
    """Seconds for aio-pika to publish BURST of the same messages with confirms, a relay
    window in flight at a time."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.get_exchange(topology.COMMANDS, ensure=False)
    envelopes = [capture() for _ in range(BURST)]
    started = time.perf_counter()
    for i in range(0, BURST, outbox.WINDOW):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        e.to_bytes(),
                        message_id=str(e.id),
                        type=e.type,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=topology.SNAPSHOT_CAPTURE,
                    mandatory=True,
                )
                for e in envelopes[i : i + outbox.WINDOW]
            )
        )
    seconds = time.perf_counter() - started
    await (await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)).purge()
    await connection.close()
    return seconds


async def operator_token(pool: asyncpg.Pool, settings: ApiSettings) -> tuple[uuid.UUID, str]:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"bench-{tenant}")
    await pool.execute(
        """INSERT INTO users (id, tenant_id, email, password_hash, role)
           VALUES ($1, $2, $3, 'unused', 'operator')""",
        user,
        tenant,
        f"bench-{user.hex[:8]}@example.com",
    )
    return tenant, token_codec(settings).issue(user, tenant, "operator", timedelta(hours=2))


@contextlib.contextmanager
def pipeline(env: dict[str, str], log: Path) -> Iterator[str]:
    """The api (with its relay) and one aggregator, as shipped; the api's base URL."""
    aggregator = [str(BIN / "lookout-count-aggregator"), "serve"]
    with (
        server(aggregator, env, log, port_env="LOOKOUT_AGGREGATOR_PORT"),
        server([str(BIN / "lookout-api")], env, log) as (base, _),
    ):
        yield base


async def counted(redis: Redis, key: str, n: int, deadline: float = 60) -> float:
    """When the tenant's stream count reached ``n`` (perf_counter)."""
    give_up = time.monotonic() + deadline
    while int(await redis.hget(key, "streams_total") or 0) < n:
        if time.monotonic() > give_up:
            raise RuntimeError(f"the count never reached {n:,}")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def single_writes(
    http: httpx.AsyncClient, redis: Redis, key: str, total: int
) -> tuple[list[float], list[float]]:
    """(write response times, write → count visible), one create at a time."""
    written, visible = [], []
    for i in range(WRITES):
        started = time.perf_counter()
        r = await http.post(
            "/api/v1/streams", json={"name": f"w{i}", "url": f"rtsp://cam.example/{i}"}
        )
        assert r.status_code == 201, r.text
        written.append(time.perf_counter() - started)
        visible.append(await counted(redis, key, total + i + 1) - started)
    return written, visible


async def bulk_burst(
    http: httpx.AsyncClient, redis: Redis, key: str, total: int
) -> tuple[float, float]:
    """Seconds from sending the burst until every write answered, and until the counts
    include all of it."""

    tag = uuid.uuid4().hex[:6]

    async def one(r: int) -> None:
        items = [
            {"name": f"b{tag}-{r}-{i}", "url": f"rtsp://cam.example/{tag}/{r}/{i}"}
            for i in range(BULK_ITEMS)
        ]
        response = await http.post("/api/v1/streams:bulk", json={"items": items})
        assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(one(r) for r in range(BULK_REQUESTS)))
    written = time.perf_counter() - started
    return written, await counted(redis, key, total + BULK_REQUESTS * BULK_ITEMS) - started


async def main() -> None:
    settings = ApiSettings(redis_prefix=f"bench-relay-{uuid.uuid4().hex[:8]}:")
    sink = OtlpSink()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
    telemetry.setup_tracing("api")  # the relay traced as in the api
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-relay-"))
    env = os.environ | {
        "LOOKOUT_REDIS_PREFIX": settings.redis_prefix,
        "LOOKOUT_MEDIA_DIR": str(folder / "media"),
        "LOOKOUT_STORAGE_DIR": str(folder / "snapshots"),
    }
    dsn = settings.database_url.get_secret_value()
    pool = await create_pool(dsn, min_size=1, max_size=4)  # the services' codecs
    redis = create_redis(settings.redis_url.get_secret_value())
    broker = Broker(settings.amqp_url.get_secret_value(), producer="bench")
    await broker.connect()
    tenant: uuid.UUID | None = None
    try:
        print(f"relay: a burst of {BURST:,} events", flush=True)
        relay_s = await relay_burst(pool, broker, dsn)
        bare_s = await confirmed_publishes(settings.amqp_url.get_secret_value())

        tenant, token = await operator_token(pool, settings)
        key = CountKeys(settings.redis_prefix).tenant(tenant)
        run_id = (await redis.info("server"))["run_id"]  # counted from the events alone
        await redis.hset(
            epoch_key(Keys(settings.redis_prefix)), mapping={"run_id": run_id, "id": "bench"}
        )
        headers = {"Authorization": f"Bearer {token}"}
        print(f"write → count: {WRITES} single creates, then bulk bursts", flush=True)
        with pipeline(env, folder / "servers.log") as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
                written, visible = await single_writes(http, redis, key, 0)
                burst = await bulk_burst(http, redis, key, WRITES)
        one_by_one = env | {"LOOKOUT_AGGREGATOR_BATCH": "1"}
        with pipeline(one_by_one, folder / "servers.log") as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
                total = WRITES + BULK_REQUESTS * BULK_ITEMS
                burst_one = await bulk_burst(http, redis, key, total)
        publish_rows(relay_s, bare_s, written, visible, burst, burst_one)
    finally:
        print("cleaning up", flush=True)
        if tenant is not None:
            await pool.execute("DELETE FROM tenants WHERE id = $1", tenant)
        await pool.execute("DELETE FROM outbox WHERE published_at IS NOT NULL")
        async for k in redis.scan_iter(match=f"{settings.redis_prefix}*", count=5000):
            await redis.delete(k)
        sink.close()
        await broker.close()
        await redis.aclose()
        await pool.close()


def publish_rows(
    relay_s: float,
    bare_s: float,
    written: list[float],
    visible: list[float],
    burst: tuple[float, float],
    burst_one: tuple[float, float],
) -> None:
    streams = BULK_REQUESTS * BULK_ITEMS
    rows = [
        Row(
            f"outbox relay, {BURST:,}-event burst: commit → all confirmed and marked sent",
            f"{relay_s:.2f} s ({BURST / relay_s:,.0f} events/s)",
            f"aio-pika publishing them with confirms, {outbox.WINDOW} in flight",
            f"{bare_s:.2f} s ({BURST / bare_s:,.0f} events/s)",
            bare_s / relay_s,
        ),
        Row(
            "write → count visible in Redis, single stream create",
            ms(visible),
            "the create's own response",
            ms(written),
            percentile(written, 50) / percentile(visible, 50),
        ),
        Row(
            f"{streams:,}-stream bulk burst ({BULK_REQUESTS} x {BULK_ITEMS}) until counted",
            f"{burst[1]:.2f} s (writes answered at {burst[0]:.2f} s)",
            "the same with the aggregator applying one event per call and ack",
            f"{burst_one[1]:.2f} s (writes answered at {burst_one[0]:.2f} s)",
            burst_one[1] / burst[1],
        ),
    ]
    scale = "BENCH_SCALE=small" if SMALL else "full scale"
    publish(
        "relay",
        "Event pipeline: outbox relay and write → count",
        rows,
        notes=f"{scale}: {WRITES} single creates one at a time, each timed from the request "
        "until the tenant's streams_total in Redis (what GET /counts reads) includes it; the "
        "burst is timed from sending the five bulk requests together until the count includes "
        "all of them. Ratios: baseline / measured (>1: the measured one is faster).",
    )


if __name__ == "__main__":
    asyncio.run(main())
