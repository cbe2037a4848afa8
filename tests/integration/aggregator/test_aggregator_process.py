"""``lookout-count-aggregator`` as an OS process: ops routes, counting, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import uuid

import httpx
from lookout_shared import contracts, topology
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.envelope import make_envelope
from redis.asyncio import Redis

from tests.conftest import trust_counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_process_serves_ops_routes_counts_and_stops_on_sigterm(
    broker: Broker, redis: Redis, prefix: str, stack: dict[str, str]
) -> None:
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.AGGREGATOR_EVENTS, ensure=False)).purge()
    await channel.close()
    await trust_counts(redis, prefix)  # counts from the events alone, no rebuild first
    port = free_port()
    env = {
        **os.environ,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        "LOOKOUT_REDIS_PREFIX": prefix,
        "LOOKOUT_AGGREGATOR_PORT": str(port),
    }
    executable = shutil.which("lookout-count-aggregator")
    assert executable is not None
    process = await asyncio.create_subprocess_exec(
        executable, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, "the service exited"
                await asyncio.sleep(0.05)
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            # The broker under the one name every service reports it by.
            assert ready.json()["checks"] == {"redis": "ok", "rabbitmq": "ok"}

            tenant = uuid.uuid4()
            snapshot = make_envelope(
                "snapshot.created",
                contracts.SnapshotCreated(
                    stream_id=uuid.uuid4(),
                    job_id=uuid.uuid4(),
                    content_type="image/jpeg",
                    size_bytes=10,
                ),
                producer="tests",
                tenant_id=tenant,
                entity_id=uuid.uuid4(),
                entity_version=1,
            )
            await broker.publish_envelope(snapshot)
            await broker.publish_envelope(snapshot)  # redelivered: still one
            key = CountKeys(prefix).tenant(tenant)
            for _ in range(200):
                if await redis.hget(key, "snapshots_total") == b"1":
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert await redis.hget(key, "snapshots_total") == b"1"
            metrics = (await http.get("/metrics")).text
            assert 'lookout_aggregator_events_total{outcome="changed"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM).
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]
    assert b"Application shutdown complete" in stderr
    assert b'"level": "error"' not in stderr
