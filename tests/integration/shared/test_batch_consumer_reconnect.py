"""A batch consumer takes its deliveries from aiormq directly, so it must subscribe again by
itself after RabbitMQ restarts, and never settle on the new channel what the old one
delivered (the tags mean nothing there: RabbitMQ would close the channel with
PRECONDITION_FAILED, or ack messages the consumer never handled)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractRobustChannel
from aiormq.exceptions import ChannelPreconditionFailed
from lookout_shared import topology
from lookout_shared.batch_consumer import consume_batches
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope
from prometheus_client import REGISTRY

from tests.integration.aggregator.test_aggregator_service import purge
from tests.integration.shared.test_broker_reconnect import probe, rabbit

PATIENCE_SECONDS = 60
QUEUE = topology.STREAM_PROBE


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def publish_when_back(broker: Broker, envelope: Envelope) -> None:
    """Publish once the robust connection is back (it reconnects on its own schedule)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            await broker.publish_envelope(envelope)
            return
        except Exception:
            assert time.monotonic() < deadline, "the broker never came back"
            await asyncio.sleep(0.5)


async def depth(broker: Broker) -> int:
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(QUEUE, passive=True)
    await channel.close()
    return queue.declaration_result.message_count or 0


async def test_a_batch_consumer_subscribes_again_after_a_restart_and_settles_nothing_stale(
    broker: Broker,
) -> None:
    await purge(broker, QUEUE)
    handled: set[uuid.UUID] = set()
    release = asyncio.Event()
    blocked = asyncio.Event()
    calls = 0

    async def handler(envelopes: list[Envelope]) -> list[Exception | None]:
        nonlocal calls
        calls += 1
        if calls == 3:  # still being handled when the node goes
            blocked.set()
            await release.wait()
        handled.update(e.id for e in envelopes)
        return [None] * len(envelopes)

    # Batches of 4, 12 let in at a time: two batches acked (tags 1-8), the third (tags
    # 9-12) held by the handler and four more (13-16) buffered when the node goes. The
    # new channel gets the 8 back as tags 1-8: an ack of tag 12 there is unknown.
    before = [probe() for _ in range(16)]
    for envelope in before:
        await broker.publish_envelope(envelope)
    consumer = await consume_batches(
        broker, QUEUE, handler, batch_size=4, max_wait=0.05, prefetch=12
    )
    closes: list[BaseException | None] = []
    try:
        await asyncio.wait_for(blocked.wait(), 10)
        await wait_until(lambda: _true(consumer.in_flight == 8), "not all were delivered")

        await asyncio.to_thread(rabbit, "stop-rabbitmq")
        await asyncio.to_thread(rabbit, "start-rabbitmq")
        assert consumer.channel is not None
        await wait_until(_reopened(consumer.channel), "the channel never reopened")
        consumer.channel.close_callbacks.add(lambda _, exc: closes.append(exc))
        # The old batch ends now: its ack must not go to the new channel.
        release.set()

        after = [probe() for _ in range(10)]
        for envelope in after:
            await publish_when_back(broker, envelope)
        want = {e.id for e in [*before, *after]}
        await wait_until(lambda: _true(want <= handled), "not everything was handled")
        await wait_until(lambda: _true(consumer.in_flight == 0), "some were never settled")
        assert await depth(broker) == 0  # every one acked, none left for another consumer
        # The channel the consumer subscribed on again was never closed under it.
        assert not any(isinstance(exc, ChannelPreconditionFailed) for exc in closes), closes
        assert closes == []
        unacked = REGISTRY.get_sample_value("lookout_queue_messages_unacked", {"queue": QUEUE})
        assert unacked == 0
    finally:
        release.set()
        await consumer.stop(grace=5)


async def _true(value: bool) -> bool:
    return value


def _reopened(channel: AbstractRobustChannel) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not channel.is_closed

    return check
