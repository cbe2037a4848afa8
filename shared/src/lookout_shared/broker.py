"""RabbitMQ adapter: one robust connection, a confirming publisher, and consumers that
validate on receipt and dead-letter what they cannot handle.

The connection is aio-pika's robust one: after RabbitMQ restarts it reconnects, declares
the topology again and resumes every consumer by itself. The URL may list the nodes of a
cluster, comma-separated: each reconnection then goes to the next node
(:mod:`lookout_shared.amqp_cluster`).

:class:`Broker` composes the parts: the connection (:mod:`lookout_shared.amqp_cluster`),
publishing (:mod:`lookout_shared.publisher`) and consuming (:mod:`lookout_shared.consumer`).
Callers import all of it from here.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika.exceptions
import tenacity
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from lookout_shared import queue_metrics, topology
from lookout_shared.amqp_cluster import ClusterConnection, connect_first, split_urls
from lookout_shared.consumer import Consumer, Handler, PermanentFailure, delivery
from lookout_shared.publisher import Publisher, route_of

__all__ = ["Broker", "Consumer", "Handler", "PermanentFailure", "route_of"]

log = logging.getLogger(__name__)
# What a first connection may meet while RabbitMQ is starting or out of reach.
UNREACHABLE = (ConnectionError, OSError, aio_pika.exceptions.AMQPConnectionError)


class Broker(Publisher):
    # How often the depth of the consumed queues is read (lookout_queue_messages_ready).
    queue_depth_interval = 15.0
    # Bounds each connection attempt: a paused node accepts TCP but never answers AMQP.
    connect_timeout = 5.0
    # Pause between reconnection attempts (aio-pika's default is 5 s): with several nodes
    # the next attempt goes to another one, so there is no reason to wait long.
    reconnect_interval = 1.0

    def __init__(self, url: str, producer: str) -> None:
        super().__init__()
        self._url = url
        self.producer = producer
        self._connection: ClusterConnection | None = None
        self._consumers: list[Consumer] = []
        self._depths: asyncio.Task[None] | None = None
        self._depths_wake = asyncio.Event()

    async def connect(self) -> None:
        self._connection = await connect_first(
            split_urls(self._url),
            self.producer,
            reconnect_interval=self.reconnect_interval,
            attempt_timeout=self.connect_timeout,
        )
        await self._open_publisher(
            await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        )

    async def connect_with_retry(self, max_delay: float = 10.0) -> None:
        """Connect, waiting for RabbitMQ as long as it takes (a service may start first):
        0.5 s, then twice as long each time up to ``max_delay``, by tenacity's schedule.

        Only the first connection needs this: once connected, the robust connection
        reconnects by itself.
        """
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(UNREACHABLE),
            wait=tenacity.wait_exponential(multiplier=0.5, max=max_delay),
            before_sleep=_log_unreachable,
        )
        await retrying(self.connect)

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.release_own_queue()  # a process's own queue goes with it
        if self._depths is not None:
            self._depths.cancel()
            # Bounded: closing must end even if the watcher is stuck in a broker call.
            await asyncio.wait([self._depths], timeout=5)
            self._depths = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("Broker.connect() was not awaited")
        return self._connection

    @property
    def node(self) -> str:
        """``host:port`` of the RabbitMQ node this broker is (or is next) connected to."""
        if self._connection is None:
            raise RuntimeError("Broker.connect() was not awaited")
        url = self._connection.url
        return f"{url.host}:{url.port}"

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def consume(self, queue: str, handler: Handler, prefetch: int) -> Consumer:
        """Consume the work queue ``queue`` on a channel of its own with the given prefetch.

        A valid message is acked after ``handler`` returns. An invalid one, or one whose
        handler raises :class:`PermanentFailure`, is dead-lettered with the reason and acked.
        Any other exception requeues it; the queue's delivery limit bounds the retries.
        """
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        # A passive declare (not get_queue(ensure=False)) registers the queue with the
        # robust channel, so its consumer is restored after a reconnect.
        work_queue = await channel.declare_queue(queue, passive=True)
        return await self._start(work_queue, queue, queue, handler)

    async def consume_events(
        self, bindings: tuple[str, ...], handler: Handler, prefetch: int
    ) -> Consumer:
        """Consume a queue of this process's own bound to ``lookout.events``
        (topology.declare_instance_queue: it survives a move to another broker node).
        Its dead letters go to ``notifier.events.dead``."""
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await topology.declare_instance_queue(channel, bindings)
        return await self._start(
            queue,
            topology.NOTIFIER_EVENTS,
            topology.NOTIFIER_EVENTS,
            handler,
            own_bindings=bindings,
        )

    async def _start(
        self,
        queue: AbstractQueue,
        label: str,
        dead_letter_key: str,
        handler: Handler,
        *,
        own_bindings: tuple[str, ...] = (),
    ) -> Consumer:
        consumer = Consumer(queue, label, own_bindings=own_bindings)
        on_message = delivery(self, queue.name, dead_letter_key, handler)
        consumer.tag = await queue.consume(consumer.track(on_message))
        self._watch_depth(consumer)
        return consumer

    def _watch_depth(self, consumer: Consumer) -> None:
        """Export the depth of every consumed queue, from the first consumer on."""
        self._consumers.append(consumer)
        self._depths_wake.set()
        if self._depths is None:
            self._depths = asyncio.create_task(
                queue_metrics.watch_depths(
                    self.connection,
                    lambda: [(c.label, c.queue.name) for c in self._consumers],
                    self._depths_wake,
                    self.queue_depth_interval,
                ),
                name="queue-depths",
            )


def _log_unreachable(state: tenacity.RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("RabbitMQ unreachable (%s); retrying in %.1fs", failure, delay)
