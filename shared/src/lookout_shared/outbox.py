"""Transactional outbox: a change and the messages it causes commit together, and a relay
publishes them afterwards, so the broker being down never loses a write nor an event.

Writers call :func:`enqueue` inside their transaction. :class:`OutboxRelay` wakes on the
``lookout_outbox`` NOTIFY that an insert trigger sends (latency), polls as a fallback (a
missed notification, a listener that reconnects), and claims rows with
``FOR UPDATE SKIP LOCKED`` so several relays share the work without publishing a row twice
while both are alive. A relay that dies after publishing but before committing leaves its
rows to be published again: delivery is at-least-once, and consumers dedupe by message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Mapping
from typing import Any

import asyncpg

from lookout_shared import metrics, telemetry
from lookout_shared.broker import Broker, route_of
from lookout_shared.db import Conn
from lookout_shared.envelope import Envelope

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

NOTIFY_CHANNEL = "lookout_outbox"
PUBLISH_TIMEOUT = 10.0


async def enqueue(
    conn: Conn, *envelopes: Envelope, headers: Mapping[str, Any] | None = None
) -> None:
    """Add messages to the outbox on ``conn``; call it inside the writer's transaction.

    The current trace context is stored with each row, so the relay's publish continues the
    trace of the request that caused it.
    """
    carried = dict(headers or {})
    telemetry.inject(carried)
    rows = []
    for envelope in envelopes:
        exchange, routing_key = route_of(envelope.type)
        rows.append(
            (
                envelope.id,
                envelope.type,
                exchange,
                routing_key,
                envelope.model_dump(mode="json"),
                carried,
            )
        )
    await conn.executemany(
        """INSERT INTO outbox (message_id, message_type, exchange, routing_key, body, headers)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        rows,
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        dsn: str,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._dsn = dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def run(self) -> None:
        """Publish pending rows until cancelled."""
        failures = 0
        try:
            while True:
                await self._ensure_listener()
                self._wakeup.clear()
                try:
                    published = await self.drain_once()
                    await self._record_backlog()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = min(2.0**failures, 10.0) * random.uniform(0.5, 1.0)  # noqa: S311
                    log.warning("outbox relay: publish failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                if published == self._batch_size:
                    continue  # more may be waiting
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the wait ends, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wakeup.wait()
        finally:
            if self._listener is not None:
                await self._listener.close()

    async def drain_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, message_id, message_type, exchange, routing_key, body, headers
                   FROM outbox WHERE published_at IS NULL
                   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self._batch_size,
            )
            sent: list[int] = []
            error: Exception | None = None
            for row in rows:
                try:
                    async with asyncio.timeout(PUBLISH_TIMEOUT):
                        await self._publish(row)
                except Exception as exc:
                    error = exc
                    await conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                        row["id"],
                        repr(exc)[:500],
                    )
                    break
                sent.append(row["id"])
            if sent:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", sent
                )
        if error is not None:
            raise error
        return len(sent)

    async def _record_backlog(self) -> None:
        # Served by the partial index on unpublished rows: cheap even with a big table.
        row = await self._pool.fetchrow(
            """SELECT count(*) AS backlog,
                      coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
               FROM outbox WHERE published_at IS NULL"""
        )
        assert row is not None
        metrics.OUTBOX_BACKLOG.set(row["backlog"])
        metrics.OUTBOX_OLDEST_AGE.set(float(row["oldest"]))

    async def _publish(self, row: asyncpg.Record) -> None:
        # Continue the trace of the transaction that wrote the row.
        parent = telemetry.extract(row["headers"])
        with _tracer.start_as_current_span(
            "outbox relay",
            context=parent,
            attributes={"messaging.message.id": str(row["message_id"])},
        ):
            await self._broker.publish(
                row["exchange"],
                row["routing_key"],
                json.dumps(row["body"]).encode(),
                message_id=str(row["message_id"]),
                message_type=row["message_type"],
                headers=row["headers"],
            )

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            self._listener = None
            log.warning("outbox relay: LISTEN unavailable (%s); polling", exc)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()
