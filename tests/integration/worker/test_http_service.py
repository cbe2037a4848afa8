"""The worker as a whole: consumers over the real broker, and the console script."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import CaptureSnapshot
from lookout_shared.envelope import Envelope, make_envelope
from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.entrypoints.http import create_app
from lookout_snapshot_worker.settings import WorkerSettings


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=5",
         "-t", "1", "-pix_fmt", "yuv420p", str(media / "cam.mp4")],
        check=True,
    )  # fmt: skip
    return media


async def add_job(
    db: asyncpg.Pool, url: str, kind: str = "file"
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A tenant, a stream of ``url`` and a queued capture job: (tenant, stream, job)."""
    tenant, stream, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"t-{tenant}")
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, $4)",
        stream, tenant, url, kind,
    )  # fmt: skip
    await db.execute(
        "INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES ($1, $2, $3)",
        job, tenant, stream,
    )  # fmt: skip
    return tenant, stream, job


def capture_envelope(tenant: uuid.UUID, stream: uuid.UUID, job: uuid.UUID) -> Envelope:
    return make_envelope(
        "snapshot.capture", CaptureSnapshot(job_id=job, stream_id=stream),
        producer="tests", tenant_id=tenant, entity_id=job, entity_version=1,
    )  # fmt: skip


async def wait_for_status(
    db: asyncpg.Pool, job: uuid.UUID, status: str, seconds: float = 15
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await db.fetchval("SELECT status FROM snapshot_jobs WHERE id = $1", job) == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job} never reached {status}")


async def purge_capture_queue(broker: Broker) -> None:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)
    await queue.purge()
    await channel.close()


async def test_a_published_command_is_captured_and_its_events_relayed(
    db: asyncpg.Pool, broker: Broker, media_dir: Path, tmp_path: Path
) -> None:
    await purge_capture_queue(broker)
    settings = WorkerSettings(media_dir=str(media_dir), storage_dir=str(tmp_path / "store"))
    app = create_app(settings)
    tenant, stream, job = await add_job(db, (media_dir / "cam.mp4").as_uri())
    command = capture_envelope(tenant, stream, job)
    async with app.router.lifespan_context(app):
        await broker.publish_envelope(command)
        await wait_for_status(db, job, "succeeded")
        # The worker's own relay publishes what the capture wrote to the outbox.
        for _ in range(200):
            pending = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if pending == 0:
                break
            await asyncio.sleep(0.05)
        assert pending == 0
    assert await db.fetchval("SELECT count(*) FROM snapshots WHERE job_id = $1", job) == 1


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_the_worker_starts_a_capture_child_per_slot_and_stops_them_when_it_stops(
    db: asyncpg.Pool, broker: Broker, media_dir: Path, tmp_path: Path
) -> None:
    await purge_capture_queue(broker)
    settings = WorkerSettings(
        media_dir=str(media_dir), storage_dir=str(tmp_path / "store"), worker_concurrency=3
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        deps = app.state.runtime.deps
        assert isinstance(deps.frames, FfmpegMedia)
        children = deps.frames.children.pids()
        assert len(children) == 3  # warm before the first command
        for _ in range(2):
            tenant, stream, job = await add_job(db, (media_dir / "cam.mp4").as_uri())
            await broker.publish_envelope(capture_envelope(tenant, stream, job))
            await wait_for_status(db, job, "succeeded")
        assert sorted(deps.frames.children.pids()) == sorted(children)  # the same ones
        assert all(process_exists(child) for child in children)
    assert not any(process_exists(child) for child in children)  # killed and reaped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_console_script_serves_health_and_stops_on_sigterm(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOOKOUT_WORKER_PORT": str(port),
        "LOOKOUT_MEDIA_DIR": str(media_dir),
        "LOOKOUT_STORAGE_DIR": str(tmp_path / "store"),
    }
    script = Path(sys.executable).parent / "lookout-snapshot-worker"
    proc = await asyncio.create_subprocess_exec(
        str(script), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = (await client.get("/readyz")).json()
            assert ready == {"status": "ready", "checks": {"postgres": "ok", "rabbitmq": "ok"}}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status tells why.
    assert proc.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]
    assert b"Application shutdown complete" in stderr
