"""Worker processes (the console script) on one queue: load shared and no job run twice,
SIGKILL mid-capture redelivered into exactly one snapshot, SIGTERM drains or hands back."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_snapshot_worker.adapters.capture_pool import CHILD_COMMAND

from .conftest import Sources
from .test_http_service import add_job, capture_envelope

Proc = asyncio.subprocess.Process
Start = Callable[..., Awaitable[Proc]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def start_worker(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Proc] = []

    async def start(name: str, **env: str) -> Proc:
        port = free_port()
        full = {
            **os.environ, "LOOKOUT_SERVICE_NAME": name, "LOOKOUT_WORKER_PORT": str(port),
            "LOOKOUT_STORAGE_DIR": str(tmp_path / "store"),
            "LOOKOUT_ALLOWED_NETWORKS": "127.0.0.1/32", "LOOKOUT_CAPTURE_ATTEMPTS": "1",
            **env,
        }  # fmt: skip
        script = Path(sys.executable).parent / "lookout-snapshot-worker"
        proc = await asyncio.create_subprocess_exec(
            str(script), env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return proc
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"worker {name} never became ready")

    yield start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def purge(broker: Broker) -> None:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)
    await queue.purge()
    await channel.close()


async def queued_messages(broker: Broker) -> int:
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(topology.SNAPSHOT_CAPTURE, passive=True)
    count = queue.declaration_result.message_count or 0
    await channel.close()
    return count


async def publish_job(db: asyncpg.Pool, broker: Broker, url: str) -> uuid.UUID:
    tenant, stream, job = await add_job(db, url, "http")
    await broker.publish_envelope(capture_envelope(tenant, stream, job))
    return job


async def wait_status(
    db: asyncpg.Pool, jobs: list[uuid.UUID], status: str, seconds: float = 30
) -> None:
    for _ in range(int(seconds / 0.05)):
        statuses = await db.fetch("SELECT status FROM snapshot_jobs WHERE id = ANY($1)", jobs)
        if len(statuses) == len(jobs) and all(r["status"] == status for r in statuses):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"jobs never all reached {status}")


async def events_of(db: asyncpg.Pool, kind: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT body FROM outbox WHERE message_type = $1 ORDER BY id", f"snapshot_job.{kind}"
    )


async def test_two_workers_share_one_queue_and_no_job_runs_twice(
    db: asyncpg.Pool, broker: Broker, sources: Sources, start_worker: Start
) -> None:
    await purge(broker)
    small = {"LOOKOUT_WORKER_PREFETCH": "2", "LOOKOUT_WORKER_CONCURRENCY": "2"}
    await asyncio.gather(start_worker("worker-a", **small), start_worker("worker-b", **small))
    jobs = [
        await publish_job(db, broker, f"{sources.base}/cam.ts?delay=0.3&n={i}") for i in range(10)
    ]
    await wait_status(db, jobs, "succeeded")

    started = await events_of(db, "started")
    assert sorted(uuid.UUID(e["body"]["entity_id"]) for e in started) == sorted(jobs)
    per_job = await db.fetch("SELECT job_id, count(*) AS n FROM snapshots GROUP BY job_id")
    assert len(per_job) == 10 and all(r["n"] == 1 for r in per_job)
    producers = {e["body"]["producer"] for e in await events_of(db, "succeeded")}
    assert producers == {"worker-a", "worker-b"}  # both took a share


async def test_sigkill_mid_capture_yields_exactly_one_snapshot(
    db: asyncpg.Pool, broker: Broker, sources: Sources, start_worker: Start, tmp_path: Path
) -> None:
    await purge(broker)
    doomed = await start_worker("worker-doomed")
    job = await publish_job(db, broker, f"{sources.base}/cam.ts?delay=2&kill=1")
    await wait_status(db, [job], "running")
    doomed.send_signal(signal.SIGKILL)
    await doomed.wait()

    await start_worker("worker-heir")
    await wait_status(db, [job], "succeeded")
    row = await db.fetchrow("SELECT attempts, version FROM snapshot_jobs WHERE id = $1", job)
    assert row is not None and row["attempts"] == 2  # started twice, finished once
    assert await db.fetchval("SELECT count(*) FROM snapshots WHERE job_id = $1", job) == 1
    assert len(list((tmp_path / "store").rglob("*.jpg"))) == 1
    assert len(await events_of(db, "succeeded")) == 1


async def test_sigterm_lets_a_capture_finish_within_the_grace(
    db: asyncpg.Pool, broker: Broker, sources: Sources, start_worker: Start
) -> None:
    await purge(broker)
    worker = await start_worker("worker-drain", LOOKOUT_SHUTDOWN_GRACE_SECONDS="10")
    job = await publish_job(db, broker, f"{sources.base}/cam.ts?delay=1.5&drain=1")
    await wait_status(db, [job], "running")
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 15) in (0, -signal.SIGTERM)
    status = await db.fetchval("SELECT status FROM snapshot_jobs WHERE id = $1", job)
    assert status == "succeeded"
    assert await queued_messages(broker) == 0  # acked, not handed back


async def test_sigterm_hands_back_what_cannot_finish_in_time(
    db: asyncpg.Pool, broker: Broker, sources: Sources, start_worker: Start
) -> None:
    await purge(broker)
    worker = await start_worker("worker-quit", LOOKOUT_SHUTDOWN_GRACE_SECONDS="0.3")
    job = await publish_job(db, broker, f"{sources.base}/cam.ts?delay=4&quit=1")
    await wait_status(db, [job], "running")
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 5) in (0, -signal.SIGTERM)
    assert await db.fetchval("SELECT status FROM snapshot_jobs WHERE id = $1", job) == "running"
    for _ in range(100):
        if await queued_messages(broker) == 1:
            break
        await asyncio.sleep(0.05)
    assert await queued_messages(broker) == 1  # back in the queue for another worker


def live_children(pid: int, marker: bytes) -> list[int]:
    """Running (non-zombie) processes whose parent is ``pid`` and whose command line holds
    ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(") ", 1)[1].split()[:2]
        if int(ppid) == pid and marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1].split()[0] != "Z"  # a zombie has already died


async def test_a_capture_child_dies_with_a_sigkilled_worker_not_at_its_own_timeout(
    db: asyncpg.Pool, broker: Broker, sources: Sources, start_worker: Start
) -> None:
    await purge(broker)
    worker = await start_worker("worker-killed", LOOKOUT_FFMPEG_TIMEOUT_SECONDS="60")
    job = await publish_job(db, broker, f"http://{sources.tarpit}/live.ts?killed=1")
    await wait_status(db, [job], "running")  # one of the warm children holds the capture
    children = live_children(worker.pid, CHILD_COMMAND[-1].encode())
    assert len(children) == 8  # one per capture slot (the default)

    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    for _ in range(40):  # ~2 s; the silent camera would hold the capture for 60 s
        if not any(is_running(child) for child in children):
            break
        await asyncio.sleep(0.05)
    assert not any(is_running(child) for child in children), "a child outlived its worker"
    await purge(broker)  # the unacked command came back to the queue
