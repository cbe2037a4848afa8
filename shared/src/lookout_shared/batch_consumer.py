"""Consuming a work queue in batches: one handler call, one span and one ack per batch.

Deliveries are buffered as they arrive. A batch is taken as soon as ``batch_size`` are
waiting, or ``max_wait`` seconds after the first one if fewer came; under load the next
batch fills while the current one is handled, so waiting adds latency only to a trickle.
Batches are handled one at a time, in delivery order, which is what makes one
``basic.ack`` with ``multiple=True`` (on the highest delivery tag of the batch) settle
exactly this batch: every lower tag on the channel is in it or was settled before.

Per message, as with :meth:`Broker.consume`: a malformed one (:class:`InvalidMessage`) or one
the handler fails with :class:`PermanentFailure` is dead-lettered with the reason (publish
confirmed before the ack), one it fails with any other exception is handed back for a
retry (the queue's delivery limit bounds them), and the rest of the batch is acked. A
handler that raises fails the whole batch back to the queue. A crash before the ack makes
the broker redeliver the whole batch: handlers must be idempotent.

Tracing: one ``<queue> process`` span per batch, a child of the first message's trace
context (so a lone message continues its trace as before), with a link to every message's
context carrying its message id (added only when the span is recorded).

Deliveries are taken from aiormq itself (``basic_consume`` on the robust channel's
underlying channel), not through aio-pika's queue consumer: that one wraps each delivery
in an ``IncomingMessage`` and runs the callback in a second task, which at this rate was
as much as everything else the aggregator does. Here a delivery is appended to the buffer
as it came (aiormq's ``DeliveredMessage``) and settled on the aiormq channel it came
from. The robust channel restores the queue after a reconnect but knows nothing of this
consumer, so it subscribes again itself when the channel reopens (``reopen_callbacks``) or
the broker cancels it; deliveries of a closed channel are dropped, never acked on the new
one (RabbitMQ requeued them when it closed, and their tags mean nothing elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from aio_pika.abc import AbstractQueue, AbstractRobustChannel
from aiormq import Channel
from aiormq.abc import AbstractChannel, DeliveredMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pamqp.commands import Basic

from lookout_shared import metrics, telemetry
from lookout_shared.batch_settle import RETRY_PAUSE, hand_back, settle
from lookout_shared.broker import Broker, Consumer
from lookout_shared.envelope import Envelope, InvalidMessage, parse_message

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

# Per envelope, in order: None (done: ack), PermanentFailure (dead-letter) or another
# exception (hand back for a retry).
BatchHandler = Callable[[list[Envelope]], Awaitable[Sequence[Exception | None]]]


async def consume_batches(
    broker: Broker,
    queue: str,
    handler: BatchHandler,
    *,
    batch_size: int,
    max_wait: float,
    prefetch: int,
) -> BatchConsumer:
    """Consume the work queue ``queue`` in batches; the prefetch is raised to the batch
    size if lower (a batch can never be larger than what the broker lets in flight)."""
    channel = await broker.connection.channel()
    await channel.set_qos(prefetch_count=max(prefetch, batch_size))  # restored on reopen
    # A passive declare registers the queue with the robust channel, which declares it
    # again on reopening, before the reopen callbacks: the consumer subscribes once it is
    # known to exist.
    work_queue = await channel.declare_queue(queue, passive=True)
    consumer = BatchConsumer(broker, work_queue, queue, handler, batch_size, max_wait)
    await consumer.subscribe(channel)
    consumer.start()
    broker._watch_depth(consumer)
    return consumer


class BatchConsumer(Consumer):
    def __init__(
        self,
        broker: Broker,
        queue: AbstractQueue,
        label: str,
        handler: BatchHandler,
        batch_size: int,
        max_wait: float,
    ) -> None:
        super().__init__(queue, label)
        self._broker = broker
        self._handler = handler
        self._size = max(batch_size, 1)
        self._max_wait = max_wait
        self._buffer: list[DeliveredMessage] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._unacked = metrics.QUEUE_UNACKED.labels(label)
        self._task: asyncio.Task[None] | None = None
        self._current: list[DeliveredMessage] = []  # the batch being handled
        self._idle = asyncio.Event()  # nothing buffered nor being handled
        self._idle.set()
        self.channel: AbstractRobustChannel | None = None  # the robust channel consumed on
        self._underlay: AbstractChannel | None = None  # the aiormq channel consumed on
        self._subscribing: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._buffer) + len(self._current)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.label} batches")

    async def subscribe(self, channel: AbstractRobustChannel) -> None:
        """Consume on ``channel``'s underlying channel now and after every reopening."""
        self.channel = channel
        channel.reopen_callbacks.add(self._on_reopen)
        await self._consume(await channel.get_underlay_channel())

    async def _consume(self, underlay: AbstractChannel) -> None:
        if underlay is self._underlay and self.tag in cast(Channel, underlay).consumers:
            return  # already consuming there
        self._underlay = underlay
        # What an earlier channel delivered is not ours any more: RabbitMQ requeued it.
        self._buffer = [m for m in self._buffer if m.channel is underlay]
        self._unacked.set(self.in_flight)
        underlay.on_consumer_cancel_callbacks.add(self._on_cancel)
        ok = await underlay.basic_consume(self.queue.name, self._on_delivery)
        self.tag = ok.consumer_tag

    def _on_reopen(self, _channel: AbstractRobustChannel | None, /) -> None:
        self._resubscribe()

    def _on_cancel(self, frame: Basic.Cancel) -> None:
        if frame.consumer_tag == self.tag:
            log.warning("the broker cancelled the consumer of %s; consuming again", self.label)
            self._resubscribe()

    def _resubscribe(self) -> None:
        if self._stopping:
            return
        if self._subscribing is not None:
            self._subscribing.cancel()
        self._subscribing = asyncio.create_task(self._keep_subscribing())

    async def _keep_subscribing(self) -> None:
        """Subscribe on the channel's current underlying channel, retrying until it works
        (a channel that closes meanwhile reopens and calls for another round)."""
        assert self.channel is not None
        while not self._stopping:
            try:
                await self._consume(await self.channel.get_underlay_channel())
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not consume %s again (%r); retrying", self.label, exc)
                await asyncio.sleep(RETRY_PAUSE)

    async def _on_delivery(self, message: DeliveredMessage) -> None:
        if self._stopping:  # arrived after stop(): not ours to start
            await hand_back([message])
            return
        self._buffer.append(message)
        self._idle.clear()
        self._arrived.set()
        if len(self._buffer) >= self._size:
            self._full.set()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._buffer) < self._size and self._max_wait > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._max_wait):
                        await self._full.wait()
            batch = self._buffer[: self._size]
            del self._buffer[: self._size]
            if len(self._buffer) < self._size:
                self._full.clear()
            if not self._buffer:
                self._arrived.clear()
            # A reopening may have emptied the buffer since it woke this loop; and what a
            # closed channel delivered RabbitMQ requeued: not ours to handle any more.
            if batch and (batch[-1].channel.is_closed or batch[0].channel.is_closed):
                batch = [m for m in batch if not m.channel.is_closed]
            self._current = batch
            self._unacked.set(self.in_flight)
            try:
                if batch:
                    await self._handle(batch)
            except asyncio.CancelledError:
                # Hand them back now (those settled already are skipped); bounded, as a
                # channel whose connection is gone would never answer.
                left, self._buffer = self._buffer, []
                await hand_back([*batch, *left])
                raise
            finally:
                self._current = []
                self._unacked.set(self.in_flight)
                if not self._buffer:
                    self._idle.set()

    async def _handle(self, batch: list[DeliveredMessage]) -> None:
        started = time.perf_counter()
        first = telemetry.extract(batch[0].header.properties.headers)
        with _tracer.start_as_current_span(
            f"{self.queue.name} process",
            context=first,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": self.queue.name,
                "messaging.batch.message_count": len(batch),
            },
        ) as span:
            if span.is_recording():
                for message in batch:
                    props = message.header.properties
                    linked = trace.get_current_span(telemetry.extract(props.headers))
                    span.add_link(
                        linked.get_span_context(),
                        {"messaging.message.id": props.message_id or ""},
                    )
            failures = await self._run_handler(batch)
            outcomes = await settle(self._broker, self.label, self.queue.name, batch, failures)
        for outcome, n in outcomes.items():
            metrics.MESSAGES_PROCESSED.labels(self.label, outcome).inc(n)
        metrics.MESSAGE_DURATION.labels(self.label).observe(time.perf_counter() - started)

    async def _run_handler(self, batch: list[DeliveredMessage]) -> dict[int, Exception]:
        """The failed messages of the batch, by index, with why."""
        failures: dict[int, Exception] = {}
        envelopes, positions = [], []
        for i, message in enumerate(batch):
            try:
                envelopes.append(parse_message(message.body))
                positions.append(i)
            except InvalidMessage as exc:
                failures[i] = exc
        if not envelopes:
            return failures
        try:
            results = await self._handler(envelopes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("batch handler failed; requeueing", extra={"queue": self.label})
            results = [exc] * len(envelopes)
        for i, result in zip(positions, results, strict=True):
            if result is not None:
                failures[i] = result
        return failures

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self._subscribing is not None:
            self._subscribing.cancel()
        if self.channel is not None:
            self.channel.reopen_callbacks.discard(self._on_reopen)
        if self.tag is not None and self._underlay is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await asyncio.wait_for(self._underlay.basic_cancel(self.tag), 5)
            self.tag = None
        self._full.set()  # no more are coming: take what is buffered at once
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        if self.in_flight:
            log.warning("handing back %d unfinished messages", self.in_flight)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
