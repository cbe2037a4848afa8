"""Hot streams held by one worker: CPU per stream, memory per reader and frame age at 10, 50
and 100 streams of a 720p H.264 source with a keyframe every 1.2 s, in keyframe mode.

The source is a local file, which each reader plays in real time and in a loop (as a camera
sends), so what is measured is the worker's own cost: decoding keyframes, encoding JPEGs,
publishing them to Redis under the lease. The hot pool runs in this process (as in the
worker); its reader children are counted by walking /proc. Target: 100 streams on 2 cores
(20 ms of CPU per second each) with frames at most 2 s old.

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_hot`` with the stack's LOOKOUT_*
variables exported; ``BENCH_SCALE=small`` for a quick correctness run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from lookout_shared.db import create_pool
from lookout_shared.hot_frames import frame_key
from lookout_shared.redis import Keys, create_redis
from lookout_snapshot_worker.bootstrap import build_deps, build_hot_pool
from lookout_snapshot_worker.settings import WorkerSettings
from redis.asyncio import Redis

from bench.report import Row, percentile, publish

SCALE = os.environ.get("BENCH_SCALE", "full")
COUNTS = (2, 5) if SCALE == "small" else (10, 50, 100)
WINDOW = 5.0 if SCALE == "small" else 30.0
TICKS = os.sysconf("SC_CLK_TCK")
BUDGET = 2 * 1000 / 100  # ms of CPU per second per stream: 100 streams on 2 cores
AGE_TARGET = 2.0


def make_video(folder: Path) -> Path:
    video = folder / "cam720.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=25", "-t", "12", "-c:v", "libx264",
         "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", str(video)],
        check=True,
    )  # fmt: skip
    return video


def pss(pid: str) -> int:
    """Proportional set size in bytes: shared library pages split between their users."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_cpu_and_memory(root: int) -> tuple[float, int, int]:
    """CPU seconds of ``root`` and its children, the children's PSS in bytes, how many."""
    cpu, memory, children = 0.0, 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(entry.name) != root and int(fields[1]) != root:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            if int(entry.name) != root:
                memory += pss(entry.name)
                children += 1
    return cpu, memory, children


async def ages(redis: Redis, keys: Keys, streams: list[uuid.UUID]) -> list[float]:
    now = time.time()
    values = [await redis.hget(frame_key(keys, s), "captured_at") for s in streams]
    return [now - float(v) if v else float("inf") for v in values]


async def run(db: asyncpg.Pool, redis: Redis, media: Path, video: Path, count: int) -> list[Row]:
    await db.execute("TRUNCATE outbox, snapshots, snapshot_jobs, streams, tenants CASCADE")
    prefix = f"bench-hot-{uuid.uuid4().hex[:6]}:"
    keys = Keys(prefix)
    tenant = uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, 'bench')", tenant)
    streams = [uuid.uuid4() for _ in range(count)]
    for stream in streams:
        await db.execute(
            """INSERT INTO streams (id, tenant_id, name, url, kind, status, hot)
               VALUES ($1, $2, 'b', $3, 'file', 'online', true)""",
            stream, tenant, video.as_uri(),
        )  # fmt: skip
    settings = WorkerSettings(
        media_dir=str(media), storage_dir=str(media / "store"), redis_prefix=prefix,
        hot_max_streams=count, allowed_networks="127.0.0.1/32",
    )  # fmt: skip
    deps = build_deps(settings, db, None, redis)
    pool = build_hot_pool(settings, deps, db, redis)
    task = asyncio.create_task(pool.run())
    try:
        deadline = time.monotonic() + 120
        while max(await ages(redis, keys, streams)) > AGE_TARGET * 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the streams never all published")
            await asyncio.sleep(0.5)
        cpu0, _, _ = tree_cpu_and_memory(os.getpid())
        began, samples = time.monotonic(), []
        while time.monotonic() - began < WINDOW:
            samples += await ages(redis, keys, streams)
            await asyncio.sleep(0.5)
        cpu1, memory, readers = tree_cpu_and_memory(os.getpid())
        per_stream = (cpu1 - cpu0) / (time.monotonic() - began) / count * 1000
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return [
        Row(f"{count} hot 720p streams (keyframes): CPU per stream", f"{per_stream:.1f} ms/s",
            "budget: 100 streams on 2 cores", f"{BUDGET:.0f} ms/s", BUDGET / per_stream),
        Row(f"{count} hot 720p streams: frame age", f"p50 {p50:.2f} s, p95 {p95:.2f} s",
            "target", f"{AGE_TARGET:.0f} s", AGE_TARGET / p95),
        Row(f"{count} hot 720p streams: memory per reader ({readers} readers)",
            f"{memory / readers / 2**20:.0f} MiB PSS", "-", "-", 1.0),
    ]  # fmt: skip


async def measure() -> list[Row]:
    db = await create_pool(os.environ["LOOKOUT_DATABASE_URL"], 1, 4)
    redis = create_redis(os.environ["LOOKOUT_REDIS_URL"])
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            media = Path(tmp)
            video = make_video(media)
            for count in COUNTS:
                rows += await run(db, redis, media, video, count)
    finally:
        await redis.aclose()
        await db.close()
    return rows


def main() -> None:
    rows = asyncio.run(measure())
    publish(
        "hot",
        "Hot streams: CPU, memory and frame age per worker",
        rows,
        notes=(
            f"One worker's hot pool, {WINDOW:.0f} s window per count (BENCH_SCALE={SCALE});"
            " 1280x720 H.264, 25 fps, a keyframe every 1.2 s; keyframe mode. CPU counts the"
            " worker process and its reader children; frame age is sampled every 0.5 s."
        ),
    )


if __name__ == "__main__":
    main()
