"""The RabbitMQ adapter against a real broker: confirms, returns, validation, dead letters."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError
from lookout_shared import topology
from lookout_shared.broker import Broker, PermanentFailure
from lookout_shared.contracts import CaptureSnapshot
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.queues import REASON_HEADER


def capture_envelope() -> Envelope:
    job, stream = uuid.uuid4(), uuid.uuid4()
    return make_envelope(
        "snapshot.capture",
        CaptureSnapshot(job_id=job, stream_id=stream),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=job,
        entity_version=1,
    )


async def purge(broker: Broker, *queues: str) -> None:
    channel = await broker.connection.channel()
    for name in queues:
        queue = await channel.get_queue(name, ensure=False)
        await queue.purge()
    await channel.close()


async def get_one(
    broker: Broker, queue_name: str, timeout: float = 10.0
) -> aio_pika.abc.AbstractIncomingMessage:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            await channel.close()
            return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing arrived in {queue_name}")
        await asyncio.sleep(0.05)


async def test_unroutable_publish_raises(broker: Broker) -> None:
    with pytest.raises(DeliveryError):
        await broker.publish(
            topology.COMMANDS, "no.such.queue", b"{}", message_id="x", message_type="x"
        )


async def test_published_message_is_persistent_and_consumed(broker: Broker) -> None:
    await purge(broker, topology.SNAPSHOT_CAPTURE)
    envelope = capture_envelope()
    await broker.publish_envelope(envelope)
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await received.put(env)

    await broker.consume(topology.SNAPSHOT_CAPTURE, handler, prefetch=4)
    got = await asyncio.wait_for(received.get(), 10)
    assert got == envelope


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid envelope"),
        (b'{"id": "x"}', "invalid envelope"),
        ("unknown", "unknown message type 'nope.nope'"),
        ("bad-data", "invalid snapshot.capture data"),
    ],
)
async def test_invalid_messages_are_dead_lettered_with_a_reason(
    broker: Broker, body: bytes | str, reason: str
) -> None:
    await purge(broker, topology.SNAPSHOT_CAPTURE, f"{topology.SNAPSHOT_CAPTURE}.dead")
    good = capture_envelope()
    if body == "unknown":
        body = good.model_copy(update={"type": "nope.nope"}).to_bytes()
    elif body == "bad-data":
        body = good.model_copy(update={"data": {"job_id": "not-a-uuid"}}).to_bytes()
    assert isinstance(body, bytes)
    handled: list[Envelope] = []

    async def handler(env: Envelope) -> None:
        handled.append(env)

    await broker.publish(
        topology.COMMANDS, topology.SNAPSHOT_CAPTURE, body, message_id="m1", message_type="x"
    )
    # The consumer goes on: a valid message behind the invalid one is still handled.
    await broker.publish_envelope(good)
    await broker.consume(topology.SNAPSHOT_CAPTURE, handler, prefetch=1)
    dead = await get_one(broker, f"{topology.SNAPSHOT_CAPTURE}.dead")
    assert dead.body == body
    assert reason in str((dead.headers or {})[REASON_HEADER])
    for _ in range(100):
        if handled:
            break
        await asyncio.sleep(0.05)
    assert handled == [good]


async def test_permanent_failure_is_dead_lettered(broker: Broker) -> None:
    await purge(broker, topology.SNAPSHOT_CAPTURE, f"{topology.SNAPSHOT_CAPTURE}.dead")

    async def handler(env: Envelope) -> None:
        raise PermanentFailure("camera said 404")

    envelope = capture_envelope()
    await broker.publish_envelope(envelope)
    await broker.consume(topology.SNAPSHOT_CAPTURE, handler, prefetch=1)
    dead = await get_one(broker, f"{topology.SNAPSHOT_CAPTURE}.dead")
    assert dead.headers[REASON_HEADER] == "camera said 404"
    assert dead.message_id == str(envelope.id)


async def test_close_ends_even_while_the_depth_watcher_is_stuck(stack: dict[str, str]) -> None:
    """Closing is bounded: a depth watcher stuck in a broker call (a cancel lost inside a
    channel open) once kept ``close()`` waiting forever, and with it the connection and its
    consumers, which then took other tests' messages."""
    broker = Broker(stack["LOOKOUT_AMQP_URL"], producer="tests")
    await broker.connect()
    released = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await released.wait()  # the first cancel is lost, as in the stuck broker call

    broker._depths = asyncio.create_task(stuck())
    started = time.monotonic()
    await asyncio.wait_for(broker.close(), 30)
    assert time.monotonic() - started < 10
    assert not broker.is_connected
    released.set()
