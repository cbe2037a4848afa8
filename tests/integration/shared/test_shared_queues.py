"""Queue depths by passive declare against a real RabbitMQ: a missing queue reads as None and
does not hide the queues after it, and nothing is answered from a channel's cache."""

from __future__ import annotations

import uuid

import aio_pika
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.queues import QueueState, queue_depths, queue_states

QUEUE = topology.STREAM_PROBE


async def test_a_missing_queue_is_none_and_the_next_queue_still_reads(broker: Broker) -> None:
    channel = await broker.connection.channel()
    scratch = await channel.declare_queue(f"test.depths.{uuid.uuid4().hex}", auto_delete=True)
    await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=scratch.name)
    await channel.default_exchange.publish(aio_pika.Message(b"y"), routing_key=scratch.name)
    missing = f"test.missing.{uuid.uuid4().hex}"
    try:
        # The missing queue closes the channel it is asked on; the ones after it still read.
        names = [missing, scratch.name, f"{missing}.2"]
        depths = await queue_depths(broker.connection, names)
        assert depths == {missing: None, scratch.name: 2, f"{missing}.2": None}
        states = await queue_states(broker.connection, [scratch.name, QUEUE])
        assert states[scratch.name] == QueueState(messages=2, consumers=0)
        assert states[QUEUE] is not None
        # The broker's answer now, never a robust channel's memory of the queue.
        await scratch.purge()
        assert await queue_depths(broker.connection, [scratch.name]) == {scratch.name: 0}
        await scratch.delete(if_unused=False, if_empty=False)
        assert await queue_depths(broker.connection, [scratch.name]) == {scratch.name: None}
    finally:
        await channel.close()
