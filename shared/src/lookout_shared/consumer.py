"""Consuming from RabbitMQ: a running consumer that drains on stop, and what becomes of
each delivery (ack, dead-letter or requeue) according to what its handler did.

:meth:`lookout_shared.broker.Broker.consume` starts these; a message is validated on
receipt (:func:`lookout_shared.envelope.parse_message`) before any handler sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from lookout_shared import metrics, telemetry, topology
from lookout_shared.envelope import Envelope, InvalidMessage, parse_message
from lookout_shared.logs import tenant_context
from lookout_shared.publisher import Publisher

# Logged and traced under the broker's name: to an operator the adapter is one thing.
log = logging.getLogger("lookout_shared.broker")
_tracer = telemetry.tracer("lookout_shared.broker")

Handler = Callable[[Envelope], Awaitable[None]]
Delivery = Callable[[AbstractIncomingMessage], Awaitable[None]]


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

    def track(self, deliver: Delivery) -> Delivery:
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


def delivery(publisher: Publisher, queue: str, dead_letter_key: str, handler: Handler) -> Delivery:
    """What to do with each message from ``queue``: continue its trace in a ``<queue>
    process`` span, hand it to ``handler``, and settle it by the outcome (dead letters
    go to ``<dead_letter_key>.dead``)."""

    async def on_message(message: AbstractIncomingMessage) -> None:
        token = otel_context.attach(telemetry.extract(message.headers))
        try:
            with _tracer.start_as_current_span(
                f"{queue} process",
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": queue,
                    "messaging.message.id": message.message_id or "",
                },
            ):
                await _handle(publisher, message, queue, dead_letter_key, handler)
        finally:
            otel_context.detach(token)

    return on_message


async def _handle(
    publisher: Publisher,
    message: AbstractIncomingMessage,
    queue: str,
    dead_letter_key: str,
    handler: Handler,
) -> None:
    """Ack, dead-letter or requeue one delivery according to what the handler did."""
    outcome = "requeue"
    started = time.perf_counter()
    try:
        outcome = await _settle(publisher, message, queue, dead_letter_key, handler)
    finally:
        metrics.MESSAGES_PROCESSED.labels(queue, outcome).inc()
        metrics.MESSAGE_DURATION.labels(queue).observe(time.perf_counter() - started)


async def _settle(
    publisher: Publisher,
    message: AbstractIncomingMessage,
    queue: str,
    dead_letter_key: str,
    handler: Handler,
) -> str:
    try:
        envelope = parse_message(message.body)
        with tenant_context(envelope.tenant_id):  # the handler's log lines name it
            await handler(envelope)
    except (InvalidMessage, PermanentFailure) as exc:
        await publisher.dead_letter(dead_letter_key, message, str(exc), source=queue)
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
