"""How deep the queues this process consumes are: a passive declare answers with the number
of ready messages and of consumers, published as ``lookout_queue_messages_ready`` and
``lookout_queue_consumers`` (the unacked ones are counted by the consumer itself), and
how many messages wait in its dead-letter twin ``<queue>.dead``, as
``lookout_dead_letter_messages`` (what an operator must look at: ``lookout-api dlq``).

The declares are ``lookout_shared.queues.queue_states``; a queue that is missing keeps its
last figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aio_pika.abc import AbstractRobustConnection

from lookout_shared import metrics
from lookout_shared.queues import queue_states

log = logging.getLogger(__name__)

# (metric label, current queue name) of every queue consumed.
Queues = Callable[[], Sequence[tuple[str, str]]]


async def record_depths(
    connection: AbstractRobustConnection, queues: Sequence[tuple[str, str]]
) -> None:
    # The label is the dead-letter routing key, so its twin is "<label>.dead" (topology.py).
    dead = {label: f"{label}.dead" for label, _ in queues}
    states = await queue_states(connection, [name for _, name in queues] + list(dead.values()))
    for label, name in queues:
        state = states.get(name)
        if state is not None:
            metrics.QUEUE_READY.labels(label).set(state.messages)
            metrics.QUEUE_CONSUMERS.labels(label).set(state.consumers)
        dead_state = states.get(dead[label])
        if dead_state is not None:
            metrics.DEAD_LETTERS.labels(label).set(dead_state.messages)


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
            # A cancel that arrives while a channel opens comes out of aio-pika as another
            # error (it closes the half-open channel): still a cancel, or close() never ends.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from exc
            log.debug("could not read queue depths: %r", exc)
        try:
            async with asyncio.timeout(interval):
                await wake.wait()
        except TimeoutError:
            pass
