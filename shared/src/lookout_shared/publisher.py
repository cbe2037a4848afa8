"""Publishing to RabbitMQ: persistent messages on a confirming channel, traced, and
dead letters parked with why.

:class:`Publisher` is the publishing half of :class:`lookout_shared.broker.Broker`, which
opens it on its connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
import prometheus_client
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    HeadersType,
)
from aiormq.abc import DeliveredMessage
from opentelemetry.trace import SpanKind

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
        self._published: dict[str, prometheus_client.Counter] = {}  # by exchange

    async def _open_publisher(self, channel: AbstractChannel) -> None:
        """Declare the topology on ``channel`` and publish on it from now on. The channel
        must confirm publishes and raise on returns: publish() then waits for the broker's
        ack, and an unroutable mandatory publish is an exception instead of a silent drop."""
        await topology.declare(channel)
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


def route_of(message_type: str) -> tuple[str, str]:
    """(exchange, routing key) for a message type: commands by queue name, events by type."""
    if message_type in COMMANDS:
        return topology.COMMANDS, message_type
    if message_type in EVENTS:
        return topology.EVENTS, message_type
    raise ValueError(f"unknown message type {message_type!r}")
