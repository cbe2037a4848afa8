"""The ceiling of the aggregator's broker rows: aio-pika alone consuming
``count-aggregator.events`` with the aggregator's default prefetch, batch size and wait, and
one ``multiple`` ack per batch, doing nothing else but adding the batch's size to a Redis
counter (so it is timed from outside exactly as the aggregator's counts are).

Run: ``python -m bench.aggregator_bare <redis key>``; prints ``ready`` once consuming, runs
until terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared import topology
from lookout_shared.redis import create_redis


async def main(counter: str) -> None:
    settings = AggregatorSettings()
    redis = create_redis(settings.redis_url.get_secret_value())
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    channel = await connection.channel()
    size, wait = settings.aggregator_batch, settings.aggregator_batch_wait_ms / 1000
    await channel.set_qos(prefetch_count=max(settings.aggregator_prefetch, size))
    queue = await channel.declare_queue(topology.AGGREGATOR_EVENTS, passive=True)
    buffer: list[AbstractIncomingMessage] = []
    arrived, full = asyncio.Event(), asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        buffer.append(message)
        arrived.set()
        if len(buffer) >= size:
            full.set()

    await queue.consume(on_message)
    print("ready", flush=True)
    while True:  # one batch at a time, taken as the aggregator takes them
        await arrived.wait()
        if len(buffer) < size:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await full.wait()
        batch = buffer[:size]
        del buffer[:size]
        if len(buffer) < size:
            full.clear()
        if not buffer:
            arrived.clear()
        await redis.incrby(counter, len(batch))
        await batch[-1].ack(multiple=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
