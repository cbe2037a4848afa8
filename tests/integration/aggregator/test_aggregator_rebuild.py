"""Rebuild and drift check against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore, decode_counts
from lookout_count_aggregator.bootstrap import check_drift, rebuilder
from lookout_count_aggregator.domain.contributions import contribution_of
from lookout_count_aggregator.handlers.rebuild import RebuildBusy, RebuildReport
from lookout_shared import contracts
from lookout_shared.count_keys import CountKeys
from lookout_shared.envelope import Envelope, make_envelope
from redis.asyncio import Redis

SqlCounts = Callable[[], Awaitable[dict[str, dict[str, int]]]]


STREAMS = [
    # (tenant index, status, kind, height, tags, version)
    (0, "online", "rtsp", 1080, ["door", "yard"], 3),
    (0, "online", "rtsp", 720, ["door"], 2),
    (0, "pending", "hls", None, [], 1),
    (0, "error", "http", 480, ["roof"], 4),
    (0, "disabled", "rtmp", 2160, [], 2),
    (1, "online", "hls", 2160, ["gate"], 5),
    (1, "pending", "file", 719, ["gate", "door"], 1),
]


async def seed(db: asyncpg.Pool) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    tenants = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]  # the third has nothing
    streams = []
    async with db.acquire() as conn:
        for i, t in enumerate(tenants):
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", t, f"t{i}-{t}")
        for n, (ti, status, kind, height, tags, version) in enumerate(STREAMS):
            sid = uuid.uuid4()
            streams.append(sid)
            await conn.execute(
                """INSERT INTO streams (id, tenant_id, name, url, kind, tags, status, height, version)
                   VALUES ($1, $2, $3, 'rtsp://127.0.0.1/x', $4, $5, $6, $7, $8)""",
                sid,
                tenants[ti],
                f"cam{n}",
                kind,
                tags,
                status,
                height,
                version,
            )
        for n, sid in enumerate(streams):
            tenant = tenants[STREAMS[n][0]]
            # Finished jobs, each with its snapshot, plus one active job on some streams.
            for k in range(n % 3 + 1):
                job, status = uuid.uuid4(), ("succeeded" if k % 2 == 0 else "failed")
                await conn.execute(
                    """INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, version)
                       VALUES ($1, $2, $3, $4, 3)""",
                    job,
                    tenant,
                    sid,
                    status,
                )
                if status == "succeeded":
                    await conn.execute(
                        """INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key,
                               content_type, size_bytes, sha256)
                           VALUES ($1, $2, $3, $4, 'k', 'image/jpeg', 10, 'abc')""",
                        uuid.uuid4(),
                        tenant,
                        sid,
                        job,
                    )
            if n % 2:
                await conn.execute(
                    """INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, version)
                       VALUES ($1, $2, $3, $4, 1)""",
                    uuid.uuid4(),
                    tenant,
                    sid,
                    "queued" if n % 4 == 1 else "running",
                )
    return tenants, streams


async def rebuild(
    db: asyncpg.Pool, redis: Redis, keys: CountKeys, tenant: uuid.UUID | None = None
) -> RebuildReport:
    return await rebuilder(db, redis, keys, chunk=3).run(tenant)


async def redis_counts(redis: Redis, key: str) -> dict[str, int]:
    return decode_counts(await redis.hgetall(key))


async def test_rebuild_equals_sql_group_by(
    db: asyncpg.Pool, redis: Redis, prefix: str, sql_counts: SqlCounts
) -> None:
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    # Leftovers a rebuild must clear: a tenant Postgres no longer has, a drifted platform.
    gone = uuid.uuid4()
    await redis.hset(keys.tenant(gone), mapping={"streams_total": 9})
    await redis.hset(keys.platform(), mapping={"streams_total": 99, "bogus": 1})

    report = await rebuild(db, redis, keys)

    expected = await sql_counts()
    assert report.removed_tenants == [str(gone)]
    assert expected[str(tenants[0])]["streams_tag:door"] == 2  # the seed is what we think
    for tenant in tenants:
        assert await redis_counts(redis, keys.tenant(tenant)) == expected.get(str(tenant), {})
    assert not await redis.exists(keys.tenant(gone))
    assert await redis_counts(redis, keys.platform()) == expected["platform"]
    assert await check_drift(db, redis, keys) == []
    # No scratch key is left behind.
    assert [k async for k in redis.scan_iter(match=f"{prefix}counts:rebuild:*")] == []


async def test_events_after_a_rebuild_continue_from_the_sql_versions(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants, streams = await seed(db)
    await rebuild(db, redis, keys)
    store = RedisCountStore(redis, keys, 3600)
    sid, tenant = streams[2], tenants[0]  # pending hls, version 1 in SQL

    for version, status in ((1, "error"), (2, "online")):  # the first is stale
        event = make_envelope(
            "stream.updated",
            contracts.StreamState(name="cam2", kind="hls", status=status, enabled=True),
            producer="tests",
            tenant_id=tenant,
            entity_id=sid,
            entity_version=version,
        )
        await store.apply(event.id, contribution_of(event))
    counts = await redis_counts(redis, keys.tenant(tenant))
    assert counts["streams_status:error"] == 1
    assert counts["streams_status:online"] == 3
    assert "streams_status:pending" not in counts
    assert counts["streams_total"] == 5


async def test_rebuild_keeps_a_state_newer_than_the_sql_snapshot(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    """An event applied before the swap but after the read is not lost by the swap."""
    keys = CountKeys(prefix)
    tenants, streams = await seed(db)
    store = RedisCountStore(redis, keys, 3600)
    deleted = make_envelope(
        "stream.deleted",
        contracts.StreamDeleted(),
        producer="tests",
        tenant_id=tenants[1],
        entity_id=streams[5],
        entity_version=6,  # SQL still says version 5
    )
    await store.apply(deleted.id, contribution_of(deleted))
    report = await rebuild(db, redis, keys)
    assert report.newer_in_redis == 1
    counts = await redis_counts(redis, keys.tenant(tenants[1]))
    assert counts["streams_total"] == 1
    assert "streams_status:online" not in counts
    assert "streams_kind:hls" not in counts


async def test_check_reports_drift_and_tenant_rebuild_repairs_it(
    db: asyncpg.Pool, redis: Redis, prefix: str, stack: dict[str, str]
) -> None:
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    await rebuild(db, redis, keys)
    await redis.hincrby(keys.tenant(tenants[1]), "streams_total", 2)
    await redis.hincrby(keys.platform(), "streams_total", 2)

    drifts = await check_drift(db, redis, keys)
    assert [(d.scope, d.field, d.sql, d.redis) for d in drifts] == [
        (str(tenants[1]), "streams_total", 2, 4),
        ("platform", "streams_total", 7, 9),
    ]

    env = {**os.environ, **stack, "LOOKOUT_REDIS_PREFIX": prefix, "LOOKOUT_ENVIRONMENT": "test"}
    code, out = await cli(env, "check")
    assert code == 1, out
    assert f"{tenants[1]} streams_total: redis=4 sql=2" in out

    code, out = await cli(env, "rebuild", "--tenant", str(tenants[1]))
    assert code == 0, out
    assert await check_drift(db, redis, keys) == []
    code, out = await cli(env, "check")
    assert code == 0, out
    assert "counts match" in out


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``lookout-count-aggregator`` with ``args``; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        "lookout-count-aggregator",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


class AfterFirstChunk:
    """A rebuild's progress that runs ``action`` once, after the snapshot was read."""

    def __init__(self, action: Callable[[], Awaitable[None]]) -> None:
        self.action: Callable[[], Awaitable[None]] | None = action
        self.total = 0

    def start(self, total: int) -> None:
        self.total = total

    async def advance(self, entities: int) -> None:
        # Awaited by the rebuild: the action runs inside its window, deterministically.
        if self.action is not None:
            action, self.action = self.action, None
            await action()


def stream_event(
    verb: str, sid: uuid.UUID, version: int, tenant: uuid.UUID, status: str = "online"
) -> Envelope:
    payload: contracts.Payload = (
        contracts.StreamDeleted()
        if verb == "deleted"
        else contracts.StreamState(name="cam", kind="rtsp", status=status, enabled=True)
    )
    return make_envelope(
        f"stream.{verb}",
        payload,
        producer="tests",
        tenant_id=tenant,
        entity_id=sid,
        entity_version=version,
    )


async def insert_stream(db: asyncpg.Pool, sid: uuid.UUID, tenant: uuid.UUID) -> None:
    await db.execute(
        """INSERT INTO streams (id, tenant_id, name, url, kind, status, version)
           VALUES ($1, $2, 'cam', 'rtsp://127.0.0.1/x', 'rtsp', 'online', 1)""",
        sid,
        tenant,
    )


async def test_a_stream_created_while_the_rebuild_runs_is_counted(
    db: asyncpg.Pool, redis: Redis, prefix: str, sql_counts: SqlCounts
) -> None:
    """The gap of a naive rebuild: created after the SQL read, applied before the swap."""
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    store = RedisCountStore(redis, keys, 3600)
    sid = uuid.uuid4()

    async def create_meanwhile() -> None:
        await insert_stream(db, sid, tenants[0])
        created = stream_event("created", sid, 1, tenants[0])
        await store.apply(created.id, contribution_of(created))
        during.append(bool(await redis.exists(keys.pending(tenants[0]))))

    during: list[bool] = []
    progress = AfterFirstChunk(create_meanwhile)
    await rebuilder(db, redis, keys, chunk=2, progress=progress).run(tenants[0])
    expected = await sql_counts()
    assert expected[str(tenants[0])]["streams_total"] == 6
    assert during == [True]  # applied while the rebuild ran, after it read Postgres
    assert await redis_counts(redis, keys.tenant(tenants[0])) == expected[str(tenants[0])]
    assert await check_drift(db, redis, keys, [tenants[0]]) == []


async def test_a_deletion_arriving_after_the_rebuild_leaves_no_negative_count(
    db: asyncpg.Pool, redis: Redis, prefix: str, sql_counts: SqlCounts
) -> None:
    """Deleted in Postgres before the rebuild read it, deletion event still in flight."""
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    store = RedisCountStore(redis, keys, 3600)
    sid = uuid.uuid4()
    await insert_stream(db, sid, tenants[2])
    created = stream_event("created", sid, 1, tenants[2])
    await store.apply(created.id, contribution_of(created))
    await db.execute("DELETE FROM streams WHERE id = $1", sid)

    await rebuild(db, redis, keys)
    deleted = stream_event("deleted", sid, 2, tenants[2])
    await store.apply(deleted.id, contribution_of(deleted))
    late_update = stream_event("updated", sid, 2, tenants[2], status="error")
    await store.apply(late_update.id, contribution_of(late_update))

    assert await redis_counts(redis, keys.tenant(tenants[2])) == {}
    assert await check_drift(db, redis, keys) == []


async def test_rebuild_during_a_burst_of_events_ends_equal_to_sql(
    db: asyncpg.Pool, redis: Redis, prefix: str, sql_counts: SqlCounts
) -> None:
    """Writers change Postgres and emit events; a deliverer applies them late, shuffled and
    duplicated; two rebuilds run meanwhile. Once every event is in, Redis equals SQL."""
    rng = random.Random(11)
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    store = RedisCountStore(redis, keys, 3600)
    await rebuild(db, redis, keys)
    in_flight: list[Envelope] = []
    live: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}  # stream -> (tenant, version)
    writing = True

    async def write() -> None:
        nonlocal writing
        for _ in range(400):
            op = rng.random()
            if op < 0.45 or not live:
                sid, tenant = uuid.uuid4(), rng.choice(tenants)
                await insert_stream(db, sid, tenant)
                live[sid] = (tenant, 1)
                in_flight.append(stream_event("created", sid, 1, tenant))
            elif op < 0.8:
                sid = rng.choice(list(live))
                tenant, version = live[sid]
                status = rng.choice(["pending", "online", "error", "disabled"])
                await db.execute(
                    "UPDATE streams SET status = $2, version = $3 WHERE id = $1",
                    sid,
                    status,
                    version + 1,
                )
                live[sid] = (tenant, version + 1)
                in_flight.append(stream_event("updated", sid, version + 1, tenant, status))
            else:
                sid = rng.choice(list(live))
                tenant, version = live.pop(sid)
                await db.execute("DELETE FROM streams WHERE id = $1", sid)
                in_flight.append(stream_event("deleted", sid, version + 1, tenant))
            await asyncio.sleep(0)
        writing = False

    async def deliver() -> None:
        while writing or in_flight:
            if len(in_flight) < 5 and writing:
                await asyncio.sleep(0.001)  # events lag behind their writes
                continue
            event = in_flight.pop(rng.randrange(len(in_flight)))
            await store.apply(event.id, contribution_of(event))
            if rng.random() < 0.2:
                in_flight.append(event)  # redelivered later
            await asyncio.sleep(0)

    async def rebuild_twice() -> None:
        for _ in range(2):
            report = await rebuilder(db, redis, keys, chunk=4).run()
            assert report.entities > 0
            await asyncio.sleep(0.01)

    await asyncio.gather(write(), deliver(), rebuild_twice())
    expected = await sql_counts()
    for tenant in tenants:
        assert await redis_counts(redis, keys.tenant(tenant)) == expected.get(str(tenant), {})
    assert await redis_counts(redis, keys.platform()) == expected["platform"]
    assert await check_drift(db, redis, keys) == []


async def test_redis_flushed_then_rebuilt_equals_sql_and_keeps_counting(
    db: asyncpg.Pool, redis: Redis, prefix: str, sql_counts: SqlCounts
) -> None:
    keys = CountKeys(prefix)
    tenants, streams = await seed(db)
    await rebuild(db, redis, keys)
    await redis.flushdb()
    assert await check_drift(db, redis, keys) != []

    await rebuild(db, redis, keys)
    expected = await sql_counts()
    for tenant in tenants:
        assert await redis_counts(redis, keys.tenant(tenant)) == expected.get(str(tenant), {})
    assert await redis_counts(redis, keys.platform()) == expected["platform"]
    # Events after the rebuild move the rebuilt counts (the entity states came back too).
    await db.execute(
        "UPDATE streams SET status = 'error', kind = 'rtsp', version = 2 WHERE id = $1", streams[2]
    )
    store = RedisCountStore(redis, keys, 3600)
    updated = stream_event("updated", streams[2], 2, tenants[0], status="error")
    assert await store.apply(updated.id, contribution_of(updated)) != {}
    assert await check_drift(db, redis, keys) == []


async def test_a_crashed_rebuild_keeps_counts_consistent_and_the_next_one_repairs(
    db: asyncpg.Pool, redis: Redis, prefix: str
) -> None:
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    await rebuild(db, redis, keys)

    class Crash(Exception):
        pass

    class CrashingProgress:
        def start(self, total: int) -> None:
            pass

        async def advance(self, entities: int) -> None:
            raise Crash

    with pytest.raises(Crash):
        await rebuilder(db, redis, keys, chunk=2, progress=CrashingProgress()).run(tenants[0])
    assert await redis.exists(keys.pending(tenants[0]))  # left behind by the crash
    store = RedisCountStore(redis, keys, 3600)
    sid = uuid.uuid4()
    await insert_stream(db, sid, tenants[0])
    created = stream_event("created", sid, 1, tenants[0])
    await store.apply(created.id, contribution_of(created))
    assert await check_drift(db, redis, keys) == []

    await rebuild(db, redis, keys, tenants[0])
    assert not await redis.exists(keys.pending(tenants[0]))
    assert await check_drift(db, redis, keys) == []


async def test_only_one_rebuild_runs_at_a_time(
    db: asyncpg.Pool, redis: Redis, prefix: str, stack: dict[str, str]
) -> None:
    keys = CountKeys(prefix)
    await seed(db)
    await redis.set(keys.rebuild_lock(), "someone-else", ex=60)
    with pytest.raises(RebuildBusy):
        await rebuild(db, redis, keys)
    env = {**os.environ, **stack, "LOOKOUT_REDIS_PREFIX": prefix, "LOOKOUT_ENVIRONMENT": "test"}
    code, out = await cli(env, "rebuild", "--quiet")
    assert code == 2, out
    assert "another rebuild is running" in out
