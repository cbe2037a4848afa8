"""Redelivery storm and scale-out: the aggregator as OS processes on the real broker.

Rows are generated in Postgres with every event of their history; each event is published
1-5 times, all shuffled. The counts must end equal to SQL ``GROUP BY``, exactly.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from lookout_count_aggregator.adapters.redis_counts import decode_counts
from lookout_shared import contracts, topology
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.envelope import Envelope, make_envelope
from redis.asyncio import Redis

from tests.conftest import trust_counts

SqlCounts = Callable[[], Awaitable[dict[str, dict[str, int]]]]
CONSUMER = Path(__file__).with_name("aggregator_storm_consumer.py")
DEAD = f"{topology.AGGREGATOR_EVENTS}.dead"
INCARNATIONS_THAT_DIE = 6  # 4 kill themselves after a Redis write, 2 are killed from outside
PATIENCE_SECONDS = 120  # generous: CI machines are shared


@dataclass
class Fleet:
    tenants: list[uuid.UUID]
    events: list[Envelope]  # every event of every entity's life, in no useful order


STATUSES: list[contracts.StreamStatus] = ["pending", "online", "error", "disabled"]
KINDS = ["rtsp", "rtmp", "hls", "http", "file"]
TAGS = ["door", "yard", "roof", "gate", "lobby"]


def stream_state(rng: random.Random) -> contracts.StreamState:
    return contracts.StreamState(
        name="cam",
        kind=rng.choice(KINDS),
        status=rng.choice(STATUSES),
        enabled=True,
        tags=rng.sample(TAGS, rng.randint(0, 3)),
        height=rng.choice([None, 360, 719, 720, 1080, 1440, 2160]),
    )


async def make_fleet(db: asyncpg.Pool, rng: random.Random, streams: int, tenants: int) -> Fleet:
    """Rows in Postgres (loaded with COPY) and every event of their history: streams
    created, updated and some deleted; jobs through their states; snapshots, some deleted."""
    tenant_ids = [uuid.uuid4() for _ in range(tenants)]
    events: list[Envelope] = []
    stream_rows, job_rows, snapshot_rows = [], [], []

    def event(
        kind: str, payload: contracts.Payload, tenant: uuid.UUID, eid: uuid.UUID, v: int
    ) -> None:
        events.append(
            make_envelope(
                kind, payload, producer="tests", tenant_id=tenant, entity_id=eid, entity_version=v
            )
        )

    for _ in range(streams):
        tenant, sid = rng.choice(tenant_ids), uuid.uuid4()
        versions = rng.randint(1, 4)
        for v in range(1, versions + 1):
            state = stream_state(rng)
            event("stream.created" if v == 1 else "stream.updated", state, tenant, sid, v)
        if rng.random() < 0.2:
            event("stream.deleted", contracts.StreamDeleted(), tenant, sid, versions + 1)
            continue
        row = (sid, tenant, "cam", "rtsp://127.0.0.1/x", state.kind, state.tags, state.status)
        stream_rows.append((*row, state.height, versions))
        # Finished jobs, and at most one active job per stream (as the schema demands).
        lives = [3] * rng.randint(0, 2) + ([rng.randint(1, 2)] if rng.random() < 0.3 else [])
        for last in lives:
            jid = uuid.uuid4()
            final = rng.choice(["succeeded", "failed"])
            path: list[tuple[str, contracts.JobStatus]] = [
                ("queued", "queued"),
                ("started", "running"),
                (final, "succeeded" if final == "succeeded" else "failed"),
            ]
            for v, (verb, status) in enumerate(path[:last], start=1):
                job = contracts.SnapshotJobState(stream_id=sid, status=status)
                event(f"snapshot_job.{verb}", job, tenant, jid, v)
            job_rows.append((jid, tenant, sid, path[last - 1][1], last))
            if last == 3 and final == "succeeded":
                snap = uuid.uuid4()
                created = contracts.SnapshotCreated(
                    stream_id=sid, job_id=jid, content_type="image/jpeg", size_bytes=1
                )
                event("snapshot.created", created, tenant, snap, 1)
                if rng.random() < 0.1:
                    event(
                        "snapshot.deleted",
                        contracts.SnapshotDeleted(stream_id=sid),
                        tenant,
                        snap,
                        2,
                    )
                else:
                    snapshot_rows.append((snap, tenant, sid, jid, "k", "image/jpeg", 1, "abc"))

    async with db.acquire() as conn:
        await conn.copy_records_to_table(
            "tenants", records=[(t, f"fleet-{t}") for t in tenant_ids], columns=["id", "name"]
        )
        await conn.copy_records_to_table(
            "streams",
            records=stream_rows,
            columns=[
                "id",
                "tenant_id",
                "name",
                "url",
                "kind",
                "tags",
                "status",
                "height",
                "version",
            ],
        )
        await conn.copy_records_to_table(
            "snapshot_jobs",
            records=job_rows,
            columns=["id", "tenant_id", "stream_id", "status", "version"],
        )
        await conn.copy_records_to_table(
            "snapshots",
            records=snapshot_rows,
            columns=[
                "id",
                "tenant_id",
                "stream_id",
                "job_id",
                "storage_key",
                "content_type",
                "size_bytes",
                "sha256",
            ],
        )
    return Fleet(tenant_ids, events)


async def purge(broker: Broker, *names: str) -> None:
    channel = await broker.connection.channel()
    for name in names:
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()


async def dead_letters(broker: Broker) -> int:
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(DEAD, passive=True)
    count = queue.declaration_result.message_count or 0
    await channel.close()
    return count


async def publish_storm(broker: Broker, events: list[Envelope], rng: random.Random) -> int:
    deliveries = [e for e in events for _ in range(rng.randint(1, 5))]
    rng.shuffle(deliveries)
    for start in range(0, len(deliveries), 1000):
        batch = deliveries[start : start + 1000]
        await asyncio.gather(*(broker.publish_envelope(e) for e in batch))
    return len(deliveries)


async def redis_counts(
    redis: Redis, keys: CountKeys, scopes: list[str]
) -> dict[str, dict[str, int]]:
    counts = {}
    for scope in scopes:
        key = keys.platform() if scope == "platform" else keys.tenant(scope)
        counts[scope] = decode_counts(await redis.hgetall(key))
    return counts


def consumer_env(stack: dict[str, str], prefix: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        "LOOKOUT_REDIS_PREFIX": prefix,
        "LOOKOUT_LOG_LEVEL": "WARNING",
        **extra,
    }


async def test_redelivery_storm_with_killed_consumers_ends_equal_to_sql(
    db: asyncpg.Pool,
    redis: Redis,
    broker: Broker,
    prefix: str,
    stack: dict[str, str],
    sql_counts: SqlCounts,
) -> None:
    rng = random.Random(6)
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    fleet = await make_fleet(db, rng, streams=450, tenants=4)
    assert len(fleet.events) > 1500
    expected = await sql_counts()
    scopes = [*map(str, fleet.tenants), "platform"]
    keys = CountKeys(prefix)
    await trust_counts(redis, prefix)  # the events alone must make the counts exact
    deliveries = await publish_storm(broker, fleet.events, rng)

    kills, process, deadline = 0, None, time.monotonic() + PATIENCE_SECONDS
    external: asyncio.Task[None] | None = None
    try:
        while await redis_counts(redis, keys, scopes) != {s: expected.get(s, {}) for s in scopes}:
            assert time.monotonic() < deadline, f"not equal after {kills} kills"
            if process is None or process.returncode is not None:
                if process is not None and process.returncode == -signal.SIGKILL:
                    kills += 1
                incarnation = kills
                kill_after = rng.randint(100, 400) if incarnation < 4 else 0
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(CONSUMER),
                    env=consumer_env(stack, prefix, STORM_KILL_AFTER=str(kill_after)),
                )
                if 4 <= incarnation < INCARNATIONS_THAT_DIE:
                    external = asyncio.create_task(kill_later(process, rng.uniform(1.5, 3.0)))
            await asyncio.sleep(0.1)
        # The consumer may still be working through redeliveries: they must change nothing.
        await asyncio.sleep(0.5)
        assert await redis_counts(redis, keys, scopes) == {s: expected.get(s, {}) for s in scopes}
    finally:
        if external is not None:
            external.cancel()
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
    assert kills >= 4, f"only {kills} consumer(s) died; the storm was too short"
    assert deliveries > 2 * len(fleet.events)
    assert await dead_letters(broker) == 0


async def kill_later(process: asyncio.subprocess.Process, seconds: float) -> None:
    await asyncio.sleep(seconds)
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_two_replicas_on_one_queue_reach_the_same_exact_counts(
    db: asyncpg.Pool,
    redis: Redis,
    broker: Broker,
    prefix: str,
    stack: dict[str, str],
    sql_counts: SqlCounts,
) -> None:
    rng = random.Random(66)
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    fleet = await make_fleet(db, rng, streams=200, tenants=3)
    expected = await sql_counts()
    scopes = [*map(str, fleet.tenants), "platform"]
    keys = CountKeys(prefix)
    ports = [free_port(), free_port()]
    await trust_counts(redis, prefix)  # the events alone must make the counts exact
    replicas = [
        await asyncio.create_subprocess_exec(
            "lookout-count-aggregator",
            "serve",
            env=consumer_env(
                stack,
                prefix,
                LOOKOUT_AGGREGATOR_PORT=str(port),
                LOOKOUT_AGGREGATOR_PREFETCH="8",
                LOOKOUT_DRIFT_CHECK_INTERVAL_SECONDS="0",
            ),
        )
        for port in ports
    ]
    try:
        async with httpx.AsyncClient() as http:
            for port in ports:
                await wait_ready(http, port)
            await publish_storm(broker, fleet.events, rng)
            deadline = time.monotonic() + PATIENCE_SECONDS
            want = {s: expected.get(s, {}) for s in scopes}
            while await redis_counts(redis, keys, scopes) != want:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            # Both replicas did part of the work.
            for port in ports:
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                assert 'lookout_aggregator_events_total{outcome="changed"}' in metrics, port
    finally:
        for process in replicas:
            process.send_signal(signal.SIGTERM)
        for process in replicas:
            await asyncio.wait_for(process.wait(), 20)
    assert await dead_letters(broker) == 0


async def wait_ready(http: httpx.AsyncClient, port: int) -> None:
    for _ in range(300):
        try:
            if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"replica on port {port} never became ready")
