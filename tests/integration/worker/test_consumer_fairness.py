"""Fair shares between tenants and coalesced probes, with the worker's consumers on the real
broker, Postgres and ffmpeg, and sources on loopback: one tenant's silent cameras must not
hold up another tenant's capture or probe, and a stream re-saved while it is probed is not
probed again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import make_envelope
from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.entrypoints.http import create_app
from lookout_snapshot_worker.settings import WorkerSettings
from prometheus_client import REGISTRY

from .conftest import Sources
from .test_http_service import capture_envelope


async def purge(broker: Broker) -> None:
    channel = await broker.connection.channel()
    for name in (topology.SNAPSHOT_CAPTURE, topology.STREAM_PROBE):
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()


async def add_tenant(db: asyncpg.Pool) -> uuid.UUID:
    tenant = uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"t-{tenant}")
    return tenant


async def add_stream(db: asyncpg.Pool, tenant: uuid.UUID, url: str) -> uuid.UUID:
    """A new stream, pending its first probe (as the api creates it)."""
    stream = uuid.uuid4()
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, 'http')",
        stream, tenant, url,
    )  # fmt: skip
    return stream


async def add_job(db: asyncpg.Pool, tenant: uuid.UUID, stream: uuid.UUID) -> uuid.UUID:
    job = uuid.uuid4()
    await db.execute(
        "INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES ($1, $2, $3)",
        job, tenant, stream,
    )  # fmt: skip
    return job


async def publish_probe(broker: Broker, tenant: uuid.UUID, stream: uuid.UUID) -> None:
    await broker.publish_envelope(
        make_envelope(
            "stream.probe",
            ProbeStream(stream_ids=[stream]),
            producer="tests",
            tenant_id=tenant,
            entity_id=stream,
            entity_version=1,
        )
    )


async def seconds_until(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    """How long until ``check`` holds, polled; fails past ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < limit:
        if await check():
            return loop.time() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {limit:g} s")


def worker_settings(tmp_path: Path, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {
        "storage_dir": str(tmp_path / "store"), "allowed_networks": "127.0.0.1/32",
        "capture_attempts": 1, "ffmpeg_timeout_seconds": 30, "shutdown_grace_seconds": 0,
        **overrides,
    }  # fmt: skip
    return WorkerSettings(**values)  # type: ignore[arg-type]


def ffprobe_runs() -> float:
    return sum(
        REGISTRY.get_sample_value(
            "lookout_ffmpeg_runs_total", {"tool": "ffprobe", "outcome": outcome}
        )
        or 0.0
        for outcome in metrics.OUTCOMES
    )


async def test_silent_cameras_of_one_tenant_do_not_hold_up_another_tenants_capture_or_probe(
    db: asyncpg.Pool, broker: Broker, sources: Sources, tmp_path: Path
) -> None:
    await purge(broker)
    noisy, quiet = await add_tenant(db), await add_tenant(db)
    # Ten cameras that accept the connection and never send a byte: each capture and each
    # probe hangs for the whole 30 s timeout.
    silent = [await add_stream(db, noisy, f"http://{sources.tarpit}/cam{i}.ts") for i in range(10)]
    hanging = [await add_job(db, noisy, stream) for stream in silent]
    good = await add_stream(db, quiet, f"{sources.base}/cam.ts?fair=capture")
    job = await add_job(db, quiet, good)
    new = await add_stream(db, quiet, f"{sources.base}/cam.ts?fair=probe")

    deferred = REGISTRY.get_sample_value(
        "lookout_worker_commands_deferred_total", {"queue": topology.SNAPSHOT_CAPTURE}
    )
    app = create_app(worker_settings(tmp_path))  # default slots, prefetch and share
    async with app.router.lifespan_context(app):
        for stream, silent_job in zip(silent, hanging, strict=True):
            await publish_probe(broker, noisy, stream)
            await broker.publish_envelope(capture_envelope(noisy, stream, silent_job))
        # The other tenant's commands come last, behind all of those.
        await broker.publish_envelope(capture_envelope(quiet, good, job))
        await publish_probe(broker, quiet, new)

        async def captured() -> bool:
            status = await db.fetchval("SELECT status FROM snapshot_jobs WHERE id = $1", job)
            return bool(status == "succeeded")

        async def probed() -> bool:
            status = await db.fetchval("SELECT status FROM streams WHERE id = $1", new)
            return bool(status == "online")

        capture_seconds = await seconds_until(captured, 10)
        probe_seconds = await seconds_until(probed, 10)
        stuck = await db.fetch("SELECT status FROM snapshot_jobs WHERE id = ANY($1)", hanging)
        # ...while every capture of the silent cameras still hangs.
        assert {r["status"] for r in stuck} <= {"queued", "running"}
    # The silent tenant's commands over its share went to the back of the queue.
    assert (
        REGISTRY.get_sample_value(
            "lookout_worker_commands_deferred_total", {"queue": topology.SNAPSHOT_CAPTURE}
        )
        or 0
    ) > (deferred or 0)
    await purge(broker)
    print(f"capture {capture_seconds:.1f} s, probe {probe_seconds:.1f} s")


async def test_resaving_a_stream_under_probe_does_not_probe_it_again(
    db: asyncpg.Pool, broker: Broker, sources: Sources, tmp_path: Path
) -> None:
    await purge(broker)
    tenant = await add_tenant(db)
    marker = uuid.uuid4().hex
    # The source answers after 2 s, so the probe is still running when the stream changes.
    stream = await add_stream(db, tenant, f"{sources.base}/cam.ts?delay=2&m={marker}")
    before = ffprobe_runs()

    app = create_app(worker_settings(tmp_path))
    async with app.router.lifespan_context(app):
        await publish_probe(broker, tenant, stream)

        async def connected() -> bool:
            return any(marker in path for path in sources.requests)

        async def online() -> bool:
            status = await db.fetchval("SELECT status FROM streams WHERE id = $1", stream)
            return bool(status == "online")

        await seconds_until(connected, 10)
        # Renamed as the api writes it: a new version, the same URL.
        await db.execute(
            "UPDATE streams SET name = 'renamed', version = version + 1, updated_at = now()"
            " WHERE id = $1",
            stream,
        )
        await seconds_until(online, 15)
    row = await db.fetchrow("SELECT name, width, version FROM streams WHERE id = $1", stream)
    assert row is not None
    assert (row["name"], row["width"], row["version"]) == ("renamed", 320, 3)
    assert ffprobe_runs() - before == 1
