"""RabbitMQ adapter: one robust connection, a confirming publisher, and consumers that
validate on receipt and dead-letter what they cannot handle.

The connection is aio-pika's robust one: after RabbitMQ restarts it reconnects, declares
the topology again and resumes every consumer by itself. The URL may list the nodes of a
cluster, comma-separated: each reconnection then goes to the next node
(:mod:`lookout_shared.amqp_cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
import aio_pika.exceptions
import prometheus_client
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    HeadersType,
)
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from lookout_shared import metrics, queue_metrics, telemetry, topology
from lookout_shared.amqp_cluster import ClusterConnection, split_urls
from lookout_shared.contracts import COMMANDS, EVENTS
from lookout_shared.envelope import Envelope, InvalidMessage, parse_message
from lookout_shared.logs import tenant_context

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
REASON_HEADER = "x-lookout-reason"


class PermanentFailure(Exception):
    """Raised by a handler for a message that must not be retried; it is dead-lettered."""


class Consumer:
    """A running consumer. :meth:`stop` drains it for a graceful shutdown: no new
    deliveries, in-flight ones get a grace period to finish (and ack), the rest are
    cancelled and handed back to the queue. ``label`` names the queue in metrics (stable
    even for a queue named per process). ``own_bindings``: the queue is this process's
    own, bound by these keys, and unbound once drained (the events it would still get are
    every other instance's too).
    """

    def __init__(
        self, queue: AbstractQueue, label: str, *, own_bindings: tuple[str, ...] = ()
    ) -> None:
        self.queue = queue
        self.label = label
        self._own_bindings = own_bindings
        metrics.QUEUE_UNACKED.labels(label)  # exported (as 0) before the first delivery
        self.tag: str | None = None
        self._in_flight: dict[asyncio.Task[None], AbstractIncomingMessage] = {}
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def track(
        self, deliver: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            if self._stopping:  # arrived after stop(): not ours to start
                await message.nack(requeue=True)
                return
            task = asyncio.current_task()
            assert task is not None
            self._in_flight[task] = message
            unacked = metrics.QUEUE_UNACKED.labels(self.label)
            unacked.inc()
            try:
                await deliver(message)
            except asyncio.CancelledError:
                # Hand it back now; bounded, because a robust channel whose connection is
                # gone would wait for a reconnect (RabbitMQ requeues it anyway then).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(message.nack(requeue=True), 1.0)
                raise
            finally:
                self._in_flight.pop(task, None)
                unacked.dec()

        return on_message

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self.tag is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self.queue.cancel(self.tag)
            self.tag = None
        pending = set(self._in_flight)
        if pending:
            log.info("draining %d in-flight messages (up to %.0fs)", len(pending), grace)
            _, pending = await asyncio.wait(pending, timeout=grace)
        if pending:
            log.warning("handing back %d unfinished messages", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=5)
        await self.release_own_queue()

    async def release_own_queue(self) -> None:
        """Unbind the queue if it is this process's own (it expires by itself then)."""
        bindings, self._own_bindings = self._own_bindings, ()
        if bindings:
            try:
                await asyncio.wait_for(topology.release_instance_queue(self.queue, bindings), 5)
            except Exception as exc:  # it expires with its bindings then
                log.warning("could not unbind %s: %r", self.queue.name, exc)


class Broker:
    # How often the depth of the consumed queues is read (lookout_queue_messages_ready).
    queue_depth_interval = 15.0
    # Bounds each connection attempt: a paused node accepts TCP but never answers AMQP.
    connect_timeout = 5.0
    # Pause between reconnection attempts (aio-pika's default is 5 s): with several nodes
    # the next attempt goes to another one, so there is no reason to wait long.
    reconnect_interval = 1.0

    def __init__(self, url: str, producer: str) -> None:
        self._url = url
        self.producer = producer
        self._connection: ClusterConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._published: dict[str, prometheus_client.Counter] = {}  # by exchange
        self._consumers: list[Consumer] = []
        self._depths: asyncio.Task[None] | None = None
        self._depths_wake = asyncio.Event()

    async def connect(self) -> None:
        self._connection = await self._connect_any(split_urls(self._url))
        # Confirms make publish() wait for the broker's ack; on_return_raises turns an
        # unroutable mandatory publish into an exception instead of a silent drop.
        self._publisher = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await topology.declare(self._publisher)
        for name in (topology.COMMANDS, topology.EVENTS, topology.DEAD):
            self._exchanges[name] = await self._publisher.get_exchange(name, ensure=False)

    async def _connect_any(self, urls: list[str]) -> ClusterConnection:
        """The first connection, to the first node that answers (any one will do)."""
        failure: BaseException | None = None
        for first in range(len(urls)):
            connection = ClusterConnection(
                urls,
                first,
                client_properties={"connection_name": self.producer},
                reconnect_interval=self.reconnect_interval,
            )
            try:
                await connection.connect(timeout=self.connect_timeout)
                return connection
            # OSError covers TimeoutError: a paused node accepts TCP but never answers.
            except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
                failure = exc
            await connection.close()
        assert failure is not None
        raise failure

    async def connect_with_retry(self, max_delay: float = 10.0) -> None:
        """Connect, waiting for RabbitMQ as long as it takes (a service may start first).

        Only the first connection needs this: once connected, the robust connection
        reconnects by itself.
        """
        delay = 0.5
        while True:
            try:
                await self.connect()
                return
            except (ConnectionError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
                log.warning("RabbitMQ unreachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.release_own_queue()  # a process's own queue goes with it
        if self._depths is not None:
            self._depths.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._depths
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

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish persistently and wait for the broker's confirm; raises if unroutable.
        Traced by an ``<exchange> publish`` span, which the message names as its consumer's
        parent."""
        with _tracer.start_as_current_span(
            f"{exchange} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.destination.name": exchange,
                "messaging.rabbitmq.destination.routing_key": routing_key,
                "messaging.message.id": message_id,
            },
        ):
            carried = dict(headers or {})
            telemetry.inject(carried)  # this publish span becomes the consumer's parent
            await self.publish_carried(
                exchange,
                routing_key,
                body,
                message_id=message_id,
                message_type=message_type,
                headers=carried,
            )

    async def publish_carried(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: HeadersType | None,
    ) -> None:
        """As :meth:`publish`, but with no span of its own: ``headers`` go out as given, so
        the trace context they already carry (``traceparent``, e.g. the one an outbox row
        kept from its writer) is what the consumer continues. For callers that publish
        many messages at once and trace them with one span."""
        target = self._exchanges.get(exchange)
        if target is None:
            raise RuntimeError(f"no exchange {exchange!r}; was Broker.connect() awaited?")
        message = aio_pika.Message(
            body,
            message_id=message_id,
            type=message_type,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
        )
        try:
            await target.publish(message, routing_key=routing_key, mandatory=True)
        except asyncio.CancelledError:
            # A connection lost mid-publish cancels the pending confirm; unless this task
            # itself is being cancelled, that is a failed publish to retry (the outbox
            # relay keeps the row), not a cancellation that ends the caller.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            raise ConnectionError("connection lost before the publish was confirmed") from None
        published = self._published.get(exchange)
        if published is None:
            published = self._published[exchange] = metrics.MESSAGES_PUBLISHED.labels(exchange)
        published.inc()

    async def publish_envelope(
        self, envelope: Envelope, headers: HeadersType | None = None
    ) -> None:
        exchange, routing_key = route_of(envelope.type)
        await self.publish(
            exchange,
            routing_key,
            envelope.to_bytes(),
            message_id=str(envelope.id),
            message_type=envelope.type,
            headers=headers,
        )

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

        async def on_message(message: AbstractIncomingMessage) -> None:
            token = otel_context.attach(telemetry.extract(message.headers))
            try:
                with _tracer.start_as_current_span(
                    f"{queue.name} process",
                    kind=SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "rabbitmq",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": queue.name,
                        "messaging.message.id": message.message_id or "",
                    },
                ):
                    await self._handle(message, queue.name, dead_letter_key, handler)
            finally:
                otel_context.detach(token)

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

    async def _handle(
        self, message: AbstractIncomingMessage, queue: str, dead_letter_key: str, handler: Handler
    ) -> None:
        """Ack, dead-letter or requeue one delivery according to what the handler did."""
        outcome = "requeue"
        started = time.perf_counter()
        try:
            outcome = await self._settle(message, queue, dead_letter_key, handler)
        finally:
            metrics.MESSAGES_PROCESSED.labels(queue, outcome).inc()
            metrics.MESSAGE_DURATION.labels(queue).observe(time.perf_counter() - started)

    async def _settle(
        self, message: AbstractIncomingMessage, queue: str, dead_letter_key: str, handler: Handler
    ) -> str:
        try:
            envelope = parse_message(message.body)
            with tenant_context(envelope.tenant_id):  # the handler's log lines name it
                await handler(envelope)
        except (InvalidMessage, PermanentFailure) as exc:
            await self.dead_letter(dead_letter_key, message, str(exc), source=queue)
            await message.ack()
            return "dead_letter"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed; requeueing", extra={"queue": queue})
            await asyncio.sleep(0.5)  # no hot loop while a dependency is down
            await message.nack(requeue=True)
            return "requeue"
        await message.ack()
        return "ack"

    async def dead_letter(
        self, queue: str, message: AbstractIncomingMessage, reason: str, source: str | None = None
    ) -> None:
        """Park a message in ``<queue>.dead`` with why, so an operator can read or replay it."""
        log.warning("dead-lettering message", extra={"queue": source or queue, "reason": reason})
        headers = {
            **(message.headers or {}),
            REASON_HEADER: reason[:1000],
            "x-lookout-queue": source or queue,
        }
        await self.publish(
            topology.DEAD,
            queue,
            message.body,
            message_id=message.message_id or "",
            message_type=message.type or "",
            headers=headers,
        )


def route_of(message_type: str) -> tuple[str, str]:
    """(exchange, routing key) for a message type: commands by queue name, events by type."""
    if message_type in COMMANDS:
        return topology.COMMANDS, message_type
    if message_type in EVENTS:
        return topology.EVENTS, message_type
    raise ValueError(f"unknown message type {message_type!r}")
