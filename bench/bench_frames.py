"""Latest-frame rows: ``latest.jpg`` from a hot frame (the JPEG a worker keeps in Redis,
resized to 640 wide, encoded once and then served from the api's encoded-image cache) against
the stored-file image route of the same stream's latest snapshot, and against a cold capture
(the worker's capture of the same source, what a snapshot request costs without a hot stream).

Throughput rows run `wrk` with 64 connections against one api process as shipped (its
default settings, INFO access log, traces exported), with bench_api's helpers
(api_servers.py); the cold capture is bench/cold_captures.py's.
The target for the hot row is p50 < 5 ms and p99 < 15 ms; the notes say whether it was met.

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_frames`` with the stack's variables
(``make bench ROWS=frames``).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from lookout_api.bootstrap import token_codec
from lookout_api.settings import ApiSettings
from lookout_shared.hot_frames import HotFrame, frame_key, to_fields
from lookout_shared.redis import Keys, create_redis
from lookout_shared.storage import LocalStorage

from bench.api_servers import (
    BIN,
    CONNECTIONS,
    OtlpSink,
    server,
    shipped_env,
    throughput,
    wrk_script,
)
from bench.bench_worker import make_video
from bench.cold_captures import cold_captures
from bench.report import Row, ms, percentile, publish

DURATION_S = 5 if os.environ.get("BENCH_SCALE", "full") == "small" else 10
TARGET_P50_MS, TARGET_P99_MS = 5.0, 15.0


async def main() -> None:
    settings = ApiSettings(redis_prefix=f"bench-frames-{uuid.uuid4().hex[:8]}:")
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-frames-"))
    media, storage = folder / "media", folder / "snapshots"
    media.mkdir()
    video = make_video(media)
    jpeg, cold = await cold_captures(video, media)
    sink = OtlpSink()
    env = shipped_env(settings.redis_prefix, media, storage, sink)
    tenant, stream = uuid.uuid4(), uuid.uuid4()
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2
    )
    redis = create_redis(settings.redis_url.get_secret_value())
    try:
        stored = await LocalStorage(str(storage)).put(jpeg, "image/jpeg")
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"b-{tenant}"
            )
            await conn.execute(
                """INSERT INTO streams (id, tenant_id, name, url, kind, status, hot)
                   VALUES ($1, $2, 'hot cam', $3, 'file', 'online', true)""",
                stream,
                tenant,
                video.as_uri(),
            )
            await conn.execute(
                """WITH job AS (
                       INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, attempts)
                       VALUES (gen_random_uuid(), $1, $2, 'succeeded', 1) RETURNING id)
                   INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key,
                                          content_type, size_bytes, sha256, width, height)
                   SELECT gen_random_uuid(), $1, $2, job.id, $3, $4, $5, $6, 1280, 720
                   FROM job""",
                tenant,
                stream,
                stored.key,
                stored.content_type,
                stored.size_bytes,
                stored.sha256,
            )
        # One frame for the whole run: the cache serves it after the first encode, as it
        # does between two frames of a live stream.
        key = frame_key(Keys(settings.redis_prefix), stream)
        frame = HotFrame(jpeg, time.time(), 1280, 720, "bench")
        await redis.hset(key, mapping=to_fields(frame))  # type: ignore[arg-type]
        await redis.pexpire(key, 600_000)
        token = token_codec(settings).issue(uuid.uuid4(), tenant, "viewer", timedelta(hours=1))
        hot_path = f"/api/v1/streams/{stream}/latest.jpg?width=640"
        file_path = f"/api/v1/streams/{stream}/snapshots/latest/image"
        api = [str(BIN / "lookout-api")]
        with server(api, env | {"LOOKOUT_CACHE": "on"}, folder / "api.log") as (base, _):
            print("wrk: latest.jpg from the hot frame", flush=True)
            hot_script = wrk_script(folder, [("GET", hot_path, token)])
            hot = throughput(base, hot_script, DURATION_S)
            print("wrk: the stored snapshot file", flush=True)
            file_script = wrk_script(folder, [("GET", file_path, token)])
            stored_file = throughput(base, file_script, DURATION_S)
    finally:
        sink.close()
        await redis.delete(frame_key(Keys(settings.redis_prefix), stream))
        await redis.aclose()
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM tenants WHERE id = $1", tenant)
        await pool.close()
    cold_p50 = percentile(cold, 50) * 1000
    met = hot.p50_ms < TARGET_P50_MS and hot.p99_ms < TARGET_P99_MS
    rows = [
        Row(
            f"GET latest.jpg?width=640 from a hot frame, {CONNECTIONS} connections",
            hot.figure(),
            "the stored snapshot file (…/snapshots/latest/image, 1280x720)",
            stored_file.figure(),
            hot.rps / stored_file.rps,
        ),
        Row(
            "latest.jpg from a hot frame, p50 under load",
            f"{hot.p50_ms:.2f} ms",
            "a cold capture on the same source, as the worker takes it (720p H.264 file)",
            ms(cold),
            cold_p50 / hot.p50_ms,
        ),
    ]
    publish(
        "frames",
        "Latest frames",
        rows,
        f"Target for the hot row: p50 < {TARGET_P50_MS:g} ms, p99 < {TARGET_P99_MS:g} ms "
        f"({'met' if met else 'not met'} in this run).",
    )


if __name__ == "__main__":
    asyncio.run(main())
