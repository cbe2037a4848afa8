"""One window of the outbox relay: its trace span, the marking of its rows, and the wait
for the windows in flight (:mod:`lookout_shared.outbox`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from lookout_shared import telemetry
from lookout_shared.db import Conn

_tracer = telemetry.tracer("lookout_shared.outbox")


async def mark_window(
    conn: Conn, rows: list[asyncpg.Record], results: list[BaseException | None]
) -> tuple[int, Exception | None]:
    """Mark the confirmed rows sent and count an attempt with its error on the failed ones;
    returns how many were sent and the first failure, to raise once this is committed."""
    sent = [row["id"] for row, result in zip(rows, results, strict=True) if result is None]
    failed = [
        (row["id"], result)
        for row, result in zip(rows, results, strict=True)
        if isinstance(result, BaseException)
    ]
    for _, result in failed:
        if not isinstance(result, Exception):  # a cancellation: not ours to absorb
            raise result
    failures = [(row_id, error) for row_id, error in failed if isinstance(error, Exception)]
    if failures:
        await conn.execute(
            """UPDATE outbox SET attempts = attempts + 1, last_error = f.error
               FROM unnest($1::bigint[], $2::text[]) AS f(id, error)
               WHERE outbox.id = f.id""",
            [row_id for row_id, _ in failures],
            [repr(error)[:500] for _, error in failures],
        )
    if sent:
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", sent
        )
    return len(sent), failures[0][1] if failures else None


async def settle(windows: set[asyncio.Task[int]], keep: int) -> None:
    """Wait until at most ``keep`` of ``windows`` are in flight; the finished ones leave the
    set, and the first failure among them is raised (the others were counted on their rows)."""
    while len(windows) > keep:
        done, _ = await asyncio.wait(windows, return_when=asyncio.FIRST_COMPLETED)
        windows -= done
        failures = [task.exception() for task in done if not task.cancelled()]
        for failure in failures:
            if failure is not None:
                raise failure


@contextlib.contextmanager
def window_span(rows: list[asyncpg.Record]) -> Iterator[None]:
    """One ``outbox relay`` span for a window's publishes.

    Each message goes out with the headers its row stored, whose ``traceparent`` is the
    writer's context: the consumer's span continues the writer's trace directly. The relay
    adds one span per window (a child of its first row's context, linked to every row's),
    not a span and a context injection per row: that cost was most of a row's publish.
    """
    if not rows:
        yield
        return
    with _tracer.start_as_current_span(
        "outbox relay",
        context=telemetry.extract(rows[0]["headers"]),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "publish",
            "messaging.batch.message_count": len(rows),
        },
    ) as span:
        if span.is_recording():
            for row in rows:
                linked = trace.get_current_span(telemetry.extract(row["headers"]))
                span.add_link(
                    linked.get_span_context(), {"messaging.message.id": str(row["message_id"])}
                )
        yield
