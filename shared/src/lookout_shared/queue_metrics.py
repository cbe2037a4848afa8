"""How deep the queues this process consumes are: a passive declare answers with the number
of ready messages and of consumers, published as ``lookout_queue_messages_ready`` and
``lookout_queue_consumers`` (the unacked ones are counted by the consumer itself), and
how many messages wait in its dead-letter twin ``<queue>.dead``, as
``lookout_dead_letter_messages`` (what an operator must look at: ``lookout-api dlq``).

The declares go over a short-lived channel of their own with ``robust=False``: a robust
channel answers a passive declare of a queue it already knows from its cache, without asking
the broker, and an unknown queue (404) closes the channel it was asked on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aio_pika.abc import AbstractRobustConnection

from lookout_shared import metrics

log = logging.getLogger(__name__)

DECLARE_TIMEOUT = 5.0

# (metric label, current queue name) of every queue consumed.
Queues = Callable[[], Sequence[tuple[str, str]]]


async def record_depths(
    connection: AbstractRobustConnection, queues: Sequence[tuple[str, str]]
) -> None:
    channel = await connection.channel()
    try:
        for label, name in queues:
            async with asyncio.timeout(DECLARE_TIMEOUT):
                declared = await channel.declare_queue(name, passive=True, robust=False)
            result = declared.declaration_result
            metrics.QUEUE_READY.labels(label).set(result.message_count or 0)
            metrics.QUEUE_CONSUMERS.labels(label).set(result.consumer_count or 0)
        # After the work queues: a missing queue (404) would close the channel. The label
        # is the dead-letter routing key, so its twin is "<label>.dead" (topology.py).
        for label, _ in queues:
            async with asyncio.timeout(DECLARE_TIMEOUT):
                dead = await channel.declare_queue(f"{label}.dead", passive=True, robust=False)
            metrics.DEAD_LETTERS.labels(label).set(dead.declaration_result.message_count or 0)
    finally:
        if not channel.is_closed:
            await channel.close()


async def watch_depths(
    connection: AbstractRobustConnection, queues: Queues, wake: asyncio.Event, interval: float
) -> None:
    """Record the depths now, then every ``interval`` seconds or when ``wake`` is set (a
    new consumer). Failures (the broker away) are retried at the next round."""
    while True:
        wake.clear()
        try:
            await record_depths(connection, queues())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("could not read queue depths: %r", exc)
        try:
            async with asyncio.timeout(interval):
                await wake.wait()
        except TimeoutError:
            pass
