"""Publishing to RabbitMQ: persistent messages on a confirming channel, traced, and
dead letters parked with why.

:class:`Publisher` is the publishing half of :class:`lookout_shared.broker.Broker`, which
opens it on its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import aiormq
import aiormq.exceptions
import prometheus_client
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    HeadersType,
)
from aiormq.abc import DeliveredMessage
from opentelemetry.trace import SpanKind
from pamqp.commands import Basic

from lookout_shared import metrics, telemetry, topology
from lookout_shared.contracts import COMMANDS, EVENTS
from lookout_shared.envelope import Envelope
from lookout_shared.queues import REASON_HEADER, SOURCE_HEADER

# Logged and traced under the broker's name: to an operator the adapter is one thing.
log = logging.getLogger("lookout_shared.broker")
_tracer = telemetry.tracer("lookout_shared.broker")


class Publisher:
    """Publishes on the exchanges of one confirming channel, which the broker opens once
    connected (the robust channel is restored with its connection)."""

    def __init__(self) -> None:
        self._exchanges: dict[str, AbstractExchange] = {}
        self._channel: AbstractChannel | None = None
        self._published: dict[str, prometheus_client.Counter] = {}  # by exchange

    async def _open_publisher(self, channel: AbstractChannel) -> None:
        """Declare the topology on ``channel`` and publish on it from now on. The channel
        must confirm publishes and raise on returns: publish() then waits for the broker's
        ack, and an unroutable mandatory publish is an exception instead of a silent drop."""
        await topology.declare(channel)
        self._channel = channel
        for name in (topology.COMMANDS, topology.EVENTS, topology.DEAD):
            self._exchanges[name] = await channel.get_exchange(name, ensure=False)

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
        the trace context they already carry (``traceparent``) is what the consumer
        continues. A window of one (:meth:`publish_window`)."""
        outgoing = Outgoing(exchange, routing_key, body, message_id, message_type, headers)
        window = await self.publish_window([outgoing])
        (failure,) = await window.confirmed(within=None)
        if failure is not None:
            raise failure

    async def publish_window(self, messages: Sequence[Outgoing]) -> Window:
        """Write the publishes of ``messages`` to the confirming channel, in the order given,
        and return once all of their frames are queued; :meth:`Window.confirmed` then waits
        for the broker's confirms. A window written after this one is queued after it, so
        RabbitMQ receives the two in that order.

        Straight on aiormq's channel, not through aio-pika's ``Exchange.publish``: that one
        holds the channel's lock until the writer task has written each frame, so many
        publishes hand the lock over one at a time, several event-loop turns each, and build
        an aio-pika message each. Here each publish queues its frame and goes on to wait for
        its confirm (``wait=False``), with the properties built once per message.
        """
        if not messages:
            return Window(messages, [], self._count_published)
        for message in messages:
            if message.exchange not in self._exchanges:
                raise RuntimeError(
                    f"no exchange {message.exchange!r}; was Broker.connect() awaited?"
                )
        assert self._channel is not None  # opened with the exchanges
        try:
            channel = await self._channel.get_underlay_channel()
            assert isinstance(channel, aiormq.Channel)  # wait=False and lock: the concrete one
        except aiormq.exceptions.ChannelInvalidStateError as exc:
            return Window(messages, [_failed(exc) for _ in messages], self._count_published)
        tasks = [asyncio.ensure_future(_confirm(channel, message)) for message in messages]
        # Each publish takes the channel's lock in turn (first come, first served) to queue
        # its frame; once this task has had the lock after them, every frame is queued.
        await asyncio.sleep(0)
        with contextlib.suppress(aiormq.exceptions.ChannelInvalidStateError):
            async with channel.lock:
                pass
        return Window(messages, tasks, self._count_published)

    def _count_published(self, exchange: str, n: int) -> None:
        published = self._published.get(exchange)
        if published is None:
            published = self._published[exchange] = metrics.MESSAGES_PUBLISHED.labels(exchange)
        published.inc(n)

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

    async def dead_letter(
        self,
        queue: str,
        message: AbstractIncomingMessage | DeliveredMessage,
        reason: str,
        source: str | None = None,
    ) -> None:
        """Park a message in ``<queue>.dead`` with why, so an operator can read or replay it.
        ``message`` is an aio-pika delivery or a bare aiormq one (the batch consumer's)."""
        log.warning("dead-lettering message", extra={"queue": source or queue, "reason": reason})
        if isinstance(message, DeliveredMessage):
            props = message.header.properties
            kept, message_id, message_type = props.headers, props.message_id, props.message_type
        else:
            kept, message_id, message_type = message.headers, message.message_id, message.type
        headers = {**(kept or {}), REASON_HEADER: reason[:1000], SOURCE_HEADER: source or queue}
        await self.publish(
            topology.DEAD,
            queue,
            message.body,
            message_id=message_id or "",
            message_type=message_type or "",
            headers=headers,
        )


class Outgoing(NamedTuple):
    """One message of a window: where it goes, its body and its AMQP properties."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    headers: HeadersType | None


class Window:
    """The publishes of one :meth:`Publisher.publish_window`, their frames queued."""

    def __init__(
        self,
        messages: Sequence[Outgoing],
        tasks: Sequence[asyncio.Future[None]],
        count: Callable[[str, int], None],
    ) -> None:
        self._messages = messages
        self._tasks = tasks
        self._count = count

    async def confirmed(self, within: float | None) -> list[BaseException | None]:
        """Per message, in order: None once the broker confirmed it, else why not (nacked,
        returned unroutable, connection lost, or not confirmed within ``within`` seconds).
        One deadline for the window, not a timer per message."""
        if not self._tasks:
            return []
        try:
            _, late = await asyncio.wait(self._tasks, timeout=within)
        finally:
            for task in self._tasks:
                task.cancel()  # no-op for the finished ones
        if late:
            await asyncio.wait(late)
        results = [_outcome(task, within) for task in self._tasks]
        counts = Counter(
            m.exchange for m, r in zip(self._messages, results, strict=True) if r is None
        )
        for exchange, n in counts.items():
            self._count(exchange, n)
        return results


async def _confirm(channel: aiormq.Channel, message: Outgoing) -> None:
    """Publish ``message`` (persistent, mandatory) and wait for its confirm. The channel
    raises on a return (``on_return_raises``) and on a nack."""
    properties = Basic.Properties(
        content_type="application/json",
        delivery_mode=2,  # persistent
        message_id=message.message_id,
        message_type=message.message_type,
        headers=message.headers,
    )
    try:
        await channel.basic_publish(
            message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=properties,
            mandatory=True,
            wait=False,
        )
    except asyncio.CancelledError:
        # A connection lost mid-publish cancels the pending confirm; unless this publish
        # itself is being cancelled (its window's deadline), that is a failed publish to
        # retry (the outbox relay keeps the row), not a cancellation of the caller.
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise
        raise ConnectionError("connection lost before the publish was confirmed") from None


def _failed(exc: BaseException) -> asyncio.Future[None]:
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(exc)
    return failed


def _outcome(task: asyncio.Future[None], timeout: float | None) -> BaseException | None:
    """None for a confirmed publish, else why not (a cancelled one timed out)."""
    if task.cancelled():
        return TimeoutError(f"not confirmed within {timeout or 0:.0f}s")
    return task.exception()


def route_of(message_type: str) -> tuple[str, str]:
    """(exchange, routing key) for a message type: commands by queue name, events by type."""
    if message_type in COMMANDS:
        return topology.COMMANDS, message_type
    if message_type in EVENTS:
        return topology.EVENTS, message_type
    raise ValueError(f"unknown message type {message_type!r}")
