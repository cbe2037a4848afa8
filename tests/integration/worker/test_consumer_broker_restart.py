"""The running worker comes back by itself after RabbitMQ restarts: its capture consumer
takes the next command and its outbox relay publishes the events, with no manual step."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import asyncpg
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope
from lookout_snapshot_worker.entrypoints.http import create_app
from lookout_snapshot_worker.settings import WorkerSettings

from .conftest import Sources
from .test_http_service import add_job, capture_envelope, purge_capture_queue, wait_for_status

ROOT = Path(__file__).resolve().parents[3]


def rabbit(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], env=os.environ, check=True)


async def capture_command(db: asyncpg.Pool, url: str) -> tuple[uuid.UUID, Envelope]:
    tenant, stream, job = await add_job(db, url, "http")
    return job, capture_envelope(tenant, stream, job)


async def unpublished(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def test_the_worker_consumes_again_after_rabbitmq_restarts(
    db: asyncpg.Pool, broker: Broker, sources: Sources, tmp_path: Path
) -> None:
    await purge_capture_queue(broker)
    settings = WorkerSettings(storage_dir=str(tmp_path / "store"), allowed_networks="127.0.0.1/32")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        first, command = await capture_command(db, sources.base + "/cam.ts")
        await broker.publish_envelope(command)
        await wait_for_status(db, first, "succeeded")

        await asyncio.to_thread(rabbit, "stop-rabbitmq")
        await asyncio.to_thread(rabbit, "start-rabbitmq")

        second, command = await capture_command(db, sources.base + "/cam.ts")
        # The test's own connection is robust too; it may take a moment to be back.
        for _ in range(120):
            try:
                await broker.publish_envelope(command)
                break
            except Exception:
                await asyncio.sleep(0.5)
        await wait_for_status(db, second, "succeeded", seconds=60)
        # The worker's relay reconnected as well: every event it wrote went out.
        for _ in range(600):
            if await unpublished(db) == 0:
                break
            await asyncio.sleep(0.1)
        assert await unpublished(db) == 0
