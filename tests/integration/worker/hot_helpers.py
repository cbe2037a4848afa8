"""Shared pieces of the hot stream tests: a looping local source, hot stream rows, a pool
running in the test's own event loop, and the frames it publishes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar, cast

import asyncpg
from lookout_shared.hot_frames import HotFrame, frame_key, from_fields
from lookout_shared.redis import Keys
from lookout_snapshot_worker.adapters.hot_pool import HotPool
from lookout_snapshot_worker.bootstrap import build_deps, build_hot_pool
from lookout_snapshot_worker.ports import Deps
from lookout_snapshot_worker.settings import WorkerSettings
from redis.asyncio import Redis

from .test_ffmpeg_rtsp import PASSWORD, SERVER, SYSTEM_PYTHON, USER, _wait_accepting

T = TypeVar("T")


def make_source(folder: Path, width: int = 640, height: int = 360, seconds: int = 3) -> Path:
    """An H.264 file with a keyframe every second (the reader plays it in a loop)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cam-{width}x{height}.mp4"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=size={width}x{height}:rate=15", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p",
             str(path)],
            check=True,
        )  # fmt: skip
    return path


async def add_hot_stream(
    db: asyncpg.Pool,
    url: str,
    kind: str,
    *,
    tenant: uuid.UUID | None = None,
    mode: str = "keyframes",
) -> tuple[uuid.UUID, uuid.UUID]:
    tenant = tenant or uuid.uuid4()
    stream = uuid.uuid4()
    await db.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        tenant,
        f"t-{tenant}",
    )
    await db.execute(
        """INSERT INTO streams (id, tenant_id, name, url, kind, status, hot, hot_mode)
           VALUES ($1, $2, 'cam', $3, $4, 'online', true, $5)""",
        stream, tenant, url, kind, mode,
    )  # fmt: skip
    return tenant, stream


def hot_settings(tmp_path: Path, prefix: str, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {
        "storage_dir": str(tmp_path / "store"), "media_dir": str(tmp_path / "media"),
        "allowed_networks": "127.0.0.1/32", "redis_prefix": prefix, "capture_attempts": 1,
        "hot_backoff_seconds": 0.2, "hot_backoff_max_seconds": 1.0, "hot_stall_seconds": 4,
        "ffmpeg_timeout_seconds": 5, **overrides,
    }  # fmt: skip
    return WorkerSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_pool(
    settings: WorkerSettings, db: asyncpg.Pool, redis: Redis
) -> AsyncIterator[tuple[HotPool, Deps]]:
    deps = build_deps(settings, db, None, redis)
    pool = build_hot_pool(settings, deps, db, redis)
    task = asyncio.create_task(pool.run())
    try:
        yield pool, deps
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def latest(redis: Redis, prefix: str, stream: uuid.UUID) -> HotFrame | None:
    raw = await redis.hgetall(frame_key(Keys(prefix), stream))
    return from_fields(cast(dict[bytes, bytes], raw)) if raw else None


async def eventually(
    probe: Callable[[], Awaitable[T | None]], seconds: float = 30, what: str = "condition"
) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached within {seconds} s")


@contextlib.contextmanager
def rtsp_server(port: int) -> Iterator[str]:
    """The GStreamer test server with its open mount on a fixed port, until the block ends."""
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), USER, PASSWORD, str(port)],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_accepting(port)
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
