"""Hot streams held by a worker (adapters/hot_pool.py) against real Redis, Postgres, ffmpeg-made
files and the GStreamer RTSP server: frames of the source's size published under the
worker's lease, a source that stops and comes back, a refused address never reached, and
a capture answered from the hot frame without running ffmpeg."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.contracts import CaptureSnapshot
from lookout_shared.hot_frames import HotFrame, frame_key
from lookout_shared.redis import Keys
from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.adapters.hot_lease import HotLeases
from lookout_snapshot_worker.bootstrap import build_deps, build_hot_pool
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from redis.asyncio import Redis

from .conftest import Sources
from .hot_helpers import (
    add_hot_stream,
    eventually,
    hot_settings,
    latest,
    make_source,
    rtsp_server,
    running_pool,
)
from .test_egress import Witness, hls_media
from .test_main_processes import free_port


def ffmpeg_runs() -> float:
    return float(
        sum(metrics.FFMPEG_RUNS.labels("ffmpeg", o)._value.get() for o in metrics.OUTCOMES)
    )


async def test_a_hot_file_stream_publishes_frames_of_the_source_size(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    settings = hot_settings(tmp_path, prefix)
    source = make_source(tmp_path / "media", 640, 360)
    _, stream = await add_hot_stream(db, source.as_uri(), "file")
    async with running_pool(settings, db, redis) as (pool, _):
        frame = await eventually(lambda: latest(redis, prefix, stream), what="a hot frame")
        assert (frame.width, frame.height) == (640, 360)
        assert jpeg_dimensions(frame.jpeg) == (640, 360)
        assert frame.holder.startswith(settings.service_name)
        assert 0 < await redis.pttl(frame_key(Keys(prefix), stream)) <= 6000
        # The file plays in a loop: newer frames keep coming.
        first = frame.captured_at
        await eventually(
            lambda: _newer(redis, prefix, stream, first + 2.5), what="frames after 2.5 s"
        )
        assert pool.held == {stream}


async def _newer(redis: Redis, prefix: str, stream: object, after: float) -> bool:
    frame = await latest(redis, prefix, stream)  # type: ignore[arg-type]
    return frame is not None and frame.captured_at > after


async def test_a_hot_rtsp_stream_publishes_frames(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    with rtsp_server(free_port()) as url:
        _, stream = await add_hot_stream(db, url, "rtsp")
        async with running_pool(hot_settings(tmp_path, prefix), db, redis):
            frame = await eventually(lambda: latest(redis, prefix, stream), what="an RTSP frame")
    assert (frame.width, frame.height) == (640, 360)
    assert jpeg_dimensions(frame.jpeg) == (640, 360)


async def test_a_source_that_stops_goes_to_error_and_comes_back_online_by_itself(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/cam"
    _, stream = await add_hot_stream(db, url, "rtsp")

    async def status() -> str:
        return str(await db.fetchval("SELECT status FROM streams WHERE id = $1", stream))

    async with running_pool(hot_settings(tmp_path, prefix), db, redis):
        with rtsp_server(port):
            await eventually(lambda: latest(redis, prefix, stream), what="a first frame")
        stopped = time.time()
        await eventually(lambda: _is(status, "error"), what="status error")
        row = await db.fetchrow("SELECT last_error_category FROM streams WHERE id = $1", stream)
        assert row is not None and row["last_error_category"] in ("refused", "timeout")
        with rtsp_server(port):
            await eventually(lambda: _newer(redis, prefix, stream, stopped), what="frames again")
            await eventually(lambda: _is(status, "online"), what="status online")
    events = await db.fetch(
        "SELECT body FROM outbox WHERE message_type = 'stream.updated' ORDER BY id"
    )
    assert [e["body"]["data"]["status"] for e in events] == ["error", "online"]


async def _is(status: object, wanted: str) -> bool:
    return await status() == wanted  # type: ignore[operator, no-any-return]


@pytest.mark.parametrize("how", ["url", "hls segment"])
async def test_a_hot_stream_on_a_refused_address_never_connects(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path, sources: Sources,
    web_root: Path, how: str,
) -> None:  # fmt: skip
    witness = Witness()
    try:
        if how == "url":  # the URL check refuses it before any reader starts
            url, kind = f"rtsp://{witness.address}/cam", "rtsp"
        else:  # the playlist is allowed, its segment is not: the shim in the reader refuses
            url = hls_media(web_root, sources, f"http://{witness.address}/segment0.ts")
            kind = "hls"
        _, stream = await add_hot_stream(db, url, kind)
        async with running_pool(hot_settings(tmp_path, prefix), db, redis):
            await eventually(
                lambda: db.fetchval(
                    "SELECT last_error_category = 'not_allowed' FROM streams WHERE id = $1",
                    stream,
                ),
                what="the stream in error, not allowed",
            )
        assert await latest(redis, prefix, stream) is None
        assert witness.connections() == 0
    finally:
        witness.close()


async def test_a_capture_of_a_hot_stream_stores_the_hot_frame_without_ffmpeg(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    settings = hot_settings(tmp_path, prefix)
    source = make_source(tmp_path / "media", 640, 360)
    tenant, stream = await add_hot_stream(db, source.as_uri(), "file")
    job = await db.fetchval(
        "INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES (gen_random_uuid(), $1, $2)"
        " RETURNING id",
        tenant, stream,
    )  # fmt: skip
    async with running_pool(settings, db, redis) as (_, deps):
        await eventually(lambda: latest(redis, prefix, stream), what="a hot frame")
        before, reused = ffmpeg_runs(), metrics.HOT_SNAPSHOTS._value.get()
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    assert ffmpeg_runs() == before  # no ffmpeg at all
    assert metrics.HOT_SNAPSHOTS._value.get() == reused + 1
    row = await db.fetchrow(
        "SELECT j.status, s.width, s.height FROM snapshot_jobs j"
        " JOIN snapshots s ON s.job_id = j.id WHERE j.id = $1",
        job,
    )
    assert row is not None and tuple(row) == ("succeeded", 640, 360)


async def test_a_hot_source_without_video_goes_to_error_as_invalid_media(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    audio = media / "audio.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine", "-t", "1", str(audio)],
        check=True,
    )
    _, stream = await add_hot_stream(db, audio.as_uri(), "file")
    async with running_pool(hot_settings(tmp_path, prefix), db, redis):
        row = await eventually(
            lambda: db.fetchrow(
                "SELECT last_error, last_error_category FROM streams"
                " WHERE id = $1 AND status = 'error'",
                stream,
            ),
            what="the stream in error",
        )
    assert row["last_error_category"] == "invalid_media", row["last_error"]


async def test_a_holder_whose_lease_lapsed_cannot_overwrite_the_new_holders_frame(
    redis: Redis, prefix: str
) -> None:
    stream = uuid.uuid4()
    old, new = (HotLeases(redis, Keys(prefix), name, 0.2) for name in ("old", "new"))
    assert await old.acquire(stream)
    assert not await new.acquire(stream)  # held: exactly one holder
    await asyncio.sleep(0.3)  # the old holder paused past its lease
    assert await new.acquire(stream)
    assert await new.publish(stream, HotFrame(b"\xff\xd8new", time.time(), 4, 2, "new"), 5)
    assert not await old.renew(stream)
    assert not await old.publish(stream, HotFrame(b"\xff\xd8old", time.time(), 4, 2, "old"), 5)
    frame = await latest(redis, prefix, stream)
    assert frame is not None and (frame.holder, frame.jpeg) == ("new", b"\xff\xd8new")
    await old.release(stream)  # not its lease any more: nothing happens
    assert await new.holder_of(stream) == "new"


async def test_a_worker_taking_many_streams_starts_a_bounded_number_of_readers_a_tick(
    db: asyncpg.Pool, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """A hundred readers started at once (~0.1 s of CPU each) starved the loop that renews
    their leases until they lapsed, and the worker lost and restarted them in a loop."""
    source = make_source(tmp_path / "media", 320, 180)
    mine = {(await add_hot_stream(db, source.as_uri(), "file"))[1] for _ in range(7)}
    settings = hot_settings(tmp_path, prefix, hot_starts_per_tick=3)
    deps = build_deps(settings, db, None, redis)
    pool = build_hot_pool(settings, deps, db, redis)
    try:
        for _ in range(30):
            before = set(pool.held)
            await pool.tick()
            assert len(set(pool.held) - before) <= 3  # never more new readers in one tick
            if mine <= set(pool.held):
                break
        assert mine <= set(pool.held)
        ttls = [await redis.pttl(Keys(prefix)("hot", "lease", s)) for s in mine]
        assert all(ttl > 0 for ttl in ttls)  # every lease renewed, in one call per tick
    finally:
        await pool.close()
