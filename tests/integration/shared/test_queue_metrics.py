"""The queue gauges against a real RabbitMQ: what waits in the queue (ready), what this process
holds (unacked) and how many consume it, as a slow handler holds its prefetch; and what waits
in its dead-letter twin."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import Envelope, make_envelope
from prometheus_client import REGISTRY

QUEUE = topology.STREAM_PROBE


def probe() -> Envelope:
    stream = uuid.uuid4()
    return make_envelope(
        "stream.probe",
        ProbeStream(stream_ids=[stream]),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"queue": QUEUE})


async def until(condition: str, check: dict[str, float]) -> None:
    deadline = time.monotonic() + 10
    while True:
        now = {name: gauge(name) for name in check}
        if now == check:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition}: {now} != {check}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fast_broker(stack: dict[str, str]) -> AsyncIterator[Broker]:
    broker = Broker(stack["LOOKOUT_AMQP_URL"], producer="tests")
    broker.queue_depth_interval = 0.2
    await broker.connect()
    channel = await broker.connection.channel()
    await (await channel.get_queue(QUEUE, ensure=False)).purge()
    await (await channel.get_queue(f"{QUEUE}.dead", ensure=False)).purge()
    await channel.close()
    yield broker
    await broker.close()


async def test_gauges_follow_a_slow_consumer(fast_broker: Broker) -> None:
    release = asyncio.Event()
    handled: list[uuid.UUID] = []

    async def slow(envelope: Envelope) -> None:
        await release.wait()
        handled.append(envelope.id)

    consumer = await fast_broker.consume(QUEUE, slow, prefetch=2)
    await until(
        "an idle consumer",
        {"lookout_queue_messages_unacked": 0, "lookout_queue_messages_ready": 0},
    )
    assert (gauge("lookout_queue_consumers") or 0) >= 1
    for _ in range(5):
        await fast_broker.publish_envelope(probe())
    # The prefetch (2) is held by this process, unsettled; the other 3 wait in the queue.
    await until(
        "a full prefetch",
        {"lookout_queue_messages_unacked": 2, "lookout_queue_messages_ready": 3},
    )
    release.set()
    await until(
        "everything handled",
        {"lookout_queue_messages_unacked": 0, "lookout_queue_messages_ready": 0},
    )
    assert len(handled) == 5
    await consumer.stop(grace=1)


async def test_dead_letter_depth_follows_the_dead_letter_queue(fast_broker: Broker) -> None:
    consumer = await fast_broker.consume(QUEUE, lambda envelope: asyncio.sleep(0), prefetch=1)
    await until("no dead letter", {"lookout_dead_letter_messages": 0})
    channel = await fast_broker.connection.channel()
    dead = await channel.get_exchange(topology.DEAD, ensure=False)
    for _ in range(2):
        await dead.publish(aio_pika.Message(probe().to_bytes()), routing_key=QUEUE)
    await until("two dead letters", {"lookout_dead_letter_messages": 2})
    await (await channel.get_queue(f"{QUEUE}.dead", ensure=False)).purge()
    await until("purged", {"lookout_dead_letter_messages": 0})
    await channel.close()
    await consumer.stop(grace=1)
