"""Consumers resume by themselves after RabbitMQ restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import Envelope, make_envelope

ROOT = Path(__file__).resolve().parents[3]


def rabbit(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], env=os.environ, check=True)


def probe() -> Envelope:
    stream = uuid.uuid4()
    return make_envelope(
        "stream.probe",
        ProbeStream(stream_id=stream),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )


async def test_consumer_resumes_after_a_broker_restart(broker: Broker) -> None:
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.STREAM_PROBE, ensure=False)).purge()
    await channel.close()
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await received.put(env)

    await broker.consume(topology.STREAM_PROBE, handler, prefetch=1)
    first = probe()
    await broker.publish_envelope(first)
    assert await asyncio.wait_for(received.get(), 10) == first

    await asyncio.to_thread(rabbit, "stop-rabbitmq")
    await asyncio.to_thread(rabbit, "start-rabbitmq")

    # The robust connection reconnects on its own schedule; publish once it is back.
    second = probe()
    for _ in range(120):
        try:
            await broker.publish_envelope(second)
            break
        except Exception:
            await asyncio.sleep(0.5)
    assert await asyncio.wait_for(received.get(), 30) == second
