"""The api bench's rows measured in process or by a client of their own: the list page at
depth (keyset against OFFSET), list totals (the aggregator's counts against SQL counting),
and a snapshot request's 202 under 64 clients against the capture it queues."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from lookout_api.adapters import counts_redis, stream_list_db
from lookout_api.domain.listing import Position, Sort, StreamFilter, StreamQuery, encode_cursor
from lookout_api.settings import ApiSettings
from lookout_shared.redis import Keys, create_redis

from bench.api_data import DEPTH, SMALL, DataSet
from bench.api_servers import CONNECTIONS
from bench.cold_captures import cold_captures
from bench.report import Row, latencies, ms, percentile

SQL_READS = 10 if SMALL else 20


def p50_ratio(baseline: list[float], measured: list[float]) -> float:
    return percentile(baseline, 50) / percentile(measured, 50)


async def pagination_rows(pool: asyncpg.Pool, big: uuid.UUID) -> list[Row]:
    """The page at ``DEPTH`` through the api's own list query: keyset against OFFSET (the
    api refuses offsets past 100,000 for this reason, so the baseline calls the query
    directly)."""
    sort = Sort("created_at", descending=True)
    at = await pool.fetchrow(
        """SELECT created_at, id FROM streams WHERE tenant_id = $1
           ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1""",
        big,
        DEPTH - 1,
    )
    assert at is not None, "the big tenant is smaller than the depth"
    keyset = StreamQuery(StreamFilter(big), sort, 50, after=Position(at["created_at"], at["id"]))
    offset = StreamQuery(StreamFilter(big), sort, 50, offset=DEPTH)
    async with pool.acquire() as conn:
        by_cursor = await latencies(lambda: stream_list_db.list_page(conn, keyset, None), SQL_READS)
        by_offset = await latencies(lambda: stream_list_db.list_page(conn, offset, None), SQL_READS)
        first_keyset, _ = await stream_list_db.list_page(conn, keyset, None)
        first_offset, _ = await stream_list_db.list_page(conn, offset, None)
    assert [r["id"] for r in first_keyset] == [r["id"] for r in first_offset]
    assert encode_cursor(sort, at["created_at"], at["id"])  # the cursor a client would send
    return [
        Row(
            f"list page at depth {DEPTH:,} (cursor)",
            ms(by_cursor),
            f"offset={DEPTH}",
            ms(by_offset),
            p50_ratio(by_offset, by_cursor),
        )
    ]


async def total_rows(
    pool: asyncpg.Pool, settings: ApiSettings, big: uuid.UUID, size: int
) -> list[Row]:
    redis = create_redis(settings.redis_url.get_secret_value())
    keys = Keys(settings.redis_prefix)
    try:
        from_counts = await latencies(
            lambda: counts_redis.read_fields(redis, keys, big, "streams_total"), 200
        )
        read = await counts_redis.read_fields(redis, keys, big, "streams_total")
        assert read is not None, "the counts are not trusted: was the rebuild run?"
        (total,) = read[1]
        assert total == size, (total, size)
    finally:
        await redis.aclose()
    count_star = await latencies(
        lambda: pool.fetchval("SELECT count(*) FROM streams WHERE tenant_id = $1", big), SQL_READS
    )
    window = await latencies(
        lambda: pool.fetch(
            """SELECT id, name, count(*) OVER () AS total FROM streams WHERE tenant_id = $1
               ORDER BY created_at DESC, id DESC LIMIT 50""",
            big,
        ),
        SQL_READS,
    )
    what = f"list total, {size:,} streams (aggregator counts)"
    return [
        Row(what, ms(from_counts), "count(*)", ms(count_star), p50_ratio(count_star, from_counts)),
        Row(what, ms(from_counts), "count(*) OVER ()", ms(window), p50_ratio(window, from_counts)),
    ]


async def snapshot_row(base: str, token: str, data: DataSet, video: Path, media: Path) -> Row:
    """POST .../snapshots answers 202 once the job and its command are committed; the
    capture it queues runs elsewhere. 64 clients at once, one request per stream, so none
    joins another's job."""
    headers = {"Authorization": f"Bearer {token}"}
    accepted: list[float] = []
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def one(stream: uuid.UUID) -> None:
            started = time.perf_counter()
            r = await client.post(f"/api/v1/streams/{stream}/snapshots")
            accepted.append(time.perf_counter() - started)
            assert r.status_code == 202, r.text

        async def worker(streams: list[uuid.UUID]) -> None:
            for stream in streams:
                await one(stream)

        await one(data.snap_streams[0])  # warm: connection, statements
        accepted.clear()
        rest = data.snap_streams[1:]
        started = time.perf_counter()
        await asyncio.gather(*(worker(rest[i::CONNECTIONS]) for i in range(CONNECTIONS)))
        rate = len(rest) / (time.perf_counter() - started)
    _, captures = await cold_captures(video, media)
    return Row(
        f"snapshot request answered (202), {CONNECTIONS} clients at once",
        f"{ms(accepted)} ({rate:,.0f} req/s)",
        "the capture it queues, as the worker takes it (720p H.264 file)",
        ms(captures),
        p50_ratio(captures, accepted),
    )
