"""One trace across the outbox, the relay, RabbitMQ and a consumer, with correct parents."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from lookout_shared import outbox, topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import Envelope, make_envelope
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()


def install_provider() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))


def probe() -> Envelope:
    stream = uuid.uuid4()
    return make_envelope(
        "stream.probe",
        ProbeStream(stream_ids=[stream]),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )


async def finished(name: str, n: int) -> list[ReadableSpan]:
    """The finished spans called ``name``, once there are ``n`` (generous wait)."""
    for _ in range(200):
        spans = [s for s in EXPORTER.get_finished_spans() if s.name == name]
        if len(spans) >= n:
            return spans
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {n} {name!r} spans")


async def test_consumers_continue_each_writers_trace_with_one_relay_span_per_window(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    install_provider()
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.STREAM_PROBE, ensure=False)).purge()
    await channel.close()
    await db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    EXPORTER.clear()
    handled: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        span = trace.get_current_span().get_span_context()
        await handled.put((str(env.id), span.trace_id))

    await broker.consume(topology.STREAM_PROBE, handler, prefetch=10)
    # Two writers, each in a trace of its own; their rows go out in one window.
    tracer = trace.get_tracer("tests")
    writers: dict[str, trace.SpanContext] = {}
    for _ in range(2):
        envelope = probe()
        with tracer.start_as_current_span("request") as request_span:
            async with db.acquire() as conn, conn.transaction():
                await outbox.enqueue(conn, envelope)
        writers[str(envelope.id)] = request_span.get_span_context()

    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"])
    assert await relay.drain_once() == 2
    got = dict([await asyncio.wait_for(handled.get(), 10) for _ in writers])
    assert got == {message_id: ctx.trace_id for message_id, ctx in writers.items()}

    # Each consumer's span is a child of its writer's span: the message carried the
    # context the row stored, with no publish span of the relay in between.
    processes = await finished(f"{topology.STREAM_PROBE} process", 2)
    assert {(p.parent.trace_id, p.parent.span_id) for p in processes if p.parent} == {
        (ctx.trace_id, ctx.span_id) for ctx in writers.values()
    }
    assert not [s for s in EXPORTER.get_finished_spans() if s.name.endswith(" publish")]
    # The relay shows as one span for the window, in the first writer's trace, linked to
    # every row's writer.
    [window] = await finished("outbox relay", 1)
    first = next(iter(writers.values()))
    assert window.parent is not None and window.parent.span_id == first.span_id
    assert {link.context.span_id for link in window.links} == {
        ctx.span_id for ctx in writers.values()
    }
    assert window.attributes is not None
    assert window.attributes["messaging.batch.message_count"] == 2
