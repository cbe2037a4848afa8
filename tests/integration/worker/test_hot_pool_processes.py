"""Hot streams shared by worker processes (the console script): each stream held by exactly
one, a second worker takes half of them, and a SIGKILLed holder's streams are published
again by the other within the bound adapters/hot_pool.py states (< 10 s with the defaults)."""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from lookout_shared.redis import Keys
from redis.asyncio import Redis

from .hot_helpers import add_hot_stream, eventually, latest, make_source
from .test_main_processes import Start, is_running, start_worker  # noqa: F401  (a fixture)

FAILOVER_BOUND = 10.0
STREAMS = 4


READER = b"lookout_snapshot_worker.adapters.hot_reader"


async def holders(redis: Redis, prefix: str, streams: list[uuid.UUID]) -> list[str]:
    keys = Keys(prefix)
    values = [await redis.get(keys("hot", "lease", s)) for s in streams]
    return [v.decode().split("@", 1)[0] if isinstance(v, bytes) else "" for v in values]


async def published_by(
    redis: Redis, prefix: str, streams: list[uuid.UUID], name: str, after: float
) -> bool:
    for stream in streams:
        frame = await latest(redis, prefix, stream)
        if frame is None or not frame.holder.startswith(f"{name}@") or frame.captured_at <= after:
            return False
    return True


def _published(
    redis: Redis, prefix: str, stream: uuid.UUID, name: str, after: float
) -> Callable[[], Awaitable[bool]]:
    return lambda: published_by(redis, prefix, [stream], name, after)


async def test_hot_streams_spread_over_two_workers_and_a_killed_ones_move_within_the_bound(
    db: asyncpg.Pool,
    redis: Redis,
    prefix: str,
    tmp_path: Path,
    start_worker: Start,  # noqa: F811
) -> None:
    media = tmp_path / "media"
    source = make_source(media, 640, 360)
    streams = [(await add_hot_stream(db, source.as_uri(), "file"))[1] for _ in range(STREAMS)]
    env = {"LOOKOUT_MEDIA_DIR": str(media), "LOOKOUT_REDIS_PREFIX": prefix}

    first = await start_worker("hot-a", **env)
    await eventually(
        lambda: published_by(redis, prefix, streams, "hot-a", 0), what="hot-a publishing all"
    )
    await start_worker("hot-b", **env)

    async def balanced() -> bool:
        names = await holders(redis, prefix, streams)
        return sorted(names) == sorted(["hot-a", "hot-b"] * (STREAMS // 2))

    await eventually(balanced, what="two streams each")
    # Each stream has one holder, and only that holder publishes it.
    now = time.time()
    names = await holders(redis, prefix, streams)
    for stream, name in zip(streams, names, strict=True):
        await eventually(_published(redis, prefix, stream, name, now), what=f"{name} publishing")

    readers = readers_of(first.pid)
    assert len(readers) == STREAMS // 2  # one reader process per stream held
    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed = time.time()
    await eventually(
        lambda: published_by(redis, prefix, streams, "hot-b", killed),
        seconds=30, what="hot-b publishing all after the kill",
    )  # fmt: skip
    failover = time.time() - killed
    print(f"failover: every stream published again by the survivor {failover:.2f} s after SIGKILL")
    assert failover < FAILOVER_BOUND
    # The dead worker's readers died with it (PR_SET_PDEATHSIG, set by the egress shim).
    await eventually(
        lambda: _none_running(readers), seconds=10, what="the dead worker's readers gone"
    )


def readers_of(pid: int) -> list[int]:
    """The hot stream readers of worker ``pid`` (not its capture children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
                if parent == pid and READER in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


async def _none_running(pids: list[int]) -> bool:
    return not any(is_running(pid) for pid in pids)
