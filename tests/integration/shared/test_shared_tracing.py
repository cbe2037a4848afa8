"""One trace across the outbox, the relay, RabbitMQ and a consumer, with correct parents."""

from __future__ import annotations

import asyncio
import contextlib
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


async def test_trace_continues_from_the_writer_to_the_consumer(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    install_provider()
    EXPORTER.clear()
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.STREAM_PROBE, ensure=False)).purge()
    await channel.close()
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        span = trace.get_current_span().get_span_context()
        await handled.put(format(span.trace_id, "032x"))

    await broker.consume(topology.STREAM_PROBE, handler, prefetch=1)
    stream = uuid.uuid4()
    envelope = make_envelope(
        "stream.probe",
        ProbeStream(stream_id=stream),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request_span:
        async with db.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, envelope)
    trace_id = format(request_span.get_span_context().trace_id, "032x")

    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        assert await asyncio.wait_for(handled.get(), 10) == trace_id
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    spans: dict[str, ReadableSpan] = {}
    for _ in range(50):
        spans = {
            s.name: s
            for s in EXPORTER.get_finished_spans()
            if format(s.context.trace_id, "032x") == trace_id
        }
        if f"{topology.STREAM_PROBE} process" in spans:
            break
        await asyncio.sleep(0.05)
    relay_span = spans["outbox relay"]
    publish = spans[f"{topology.COMMANDS} publish"]
    process = spans[f"{topology.STREAM_PROBE} process"]
    assert (
        relay_span.parent is not None
        and relay_span.parent.span_id == request_span.get_span_context().span_id
    )
    assert publish.parent is not None and publish.parent.span_id == relay_span.context.span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.attributes is not None and process.attributes["messaging.system"] == "rabbitmq"
