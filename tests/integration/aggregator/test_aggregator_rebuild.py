"""Rebuild and drift check against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter

import asyncpg
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore, decode_counts
from lookout_count_aggregator.domain.contributions import contribution_of
from lookout_count_aggregator.keys import CountKeys
from lookout_count_aggregator.rebuild import check, rebuild
from lookout_shared import contracts
from lookout_shared.envelope import make_envelope
from redis.asyncio import Redis

# The counts as SQL GROUP BY, written independently of the aggregator's own code.
GROUP_BY = """
SELECT tenant_id, 'streams_total' AS field, count(*) AS n FROM streams GROUP BY 1
UNION ALL SELECT tenant_id, 'streams_status:' || status, count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_kind:' || kind, count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_resolution:' || CASE
        WHEN height IS NULL THEN 'unknown' WHEN height >= 2160 THEN 'uhd'
        WHEN height >= 1080 THEN 'fhd' WHEN height >= 720 THEN 'hd' ELSE 'sd' END,
    count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_tag:' || tag, count(*)
    FROM streams, unnest(tags) AS tag GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'snapshots_total', count(*) FROM snapshots GROUP BY 1
UNION ALL SELECT tenant_id, 'jobs_status:' || status, count(*) FROM snapshot_jobs GROUP BY 1, 2
"""

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


async def sql_counts(db: asyncpg.Pool) -> dict[uuid.UUID, dict[str, int]]:
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for row in await db.fetch(GROUP_BY):
        counts.setdefault(row["tenant_id"], {})[row["field"]] = row["n"]
    return counts


async def redis_counts(redis: Redis, key: str) -> dict[str, int]:
    return decode_counts(await redis.hgetall(key))


async def test_rebuild_equals_sql_group_by(db: asyncpg.Pool, redis: Redis, prefix: str) -> None:
    keys = CountKeys(prefix)
    tenants, _ = await seed(db)
    # Leftovers a rebuild must clear: a tenant Postgres no longer has, a drifted platform.
    gone = uuid.uuid4()
    await redis.hset(keys.tenant(gone), mapping={"streams_total": 9})
    await redis.hset(keys.platform(), mapping={"streams_total": 99, "bogus": 1})

    report = await rebuild(db, redis, keys)

    expected = await sql_counts(db)
    assert report.removed_tenants == [str(gone)]
    assert expected[tenants[0]]["streams_tag:door"] == 2  # the seed is what we think it is
    for tenant in tenants:
        assert await redis_counts(redis, keys.tenant(tenant)) == expected.get(tenant, {})
    assert not await redis.exists(keys.tenant(gone))
    platform: Counter[str] = Counter()
    for counts in expected.values():
        platform.update(counts)
    assert await redis_counts(redis, keys.platform()) == dict(platform)
    assert await check(db, redis, keys) == []
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

    drifts = await check(db, redis, keys)
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
    assert await check(db, redis, keys) == []
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
