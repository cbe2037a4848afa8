"""Transactional outbox: a change and the messages it causes commit together, and a relay
publishes them afterwards, so the broker being down never loses a write nor an event.

Writers call :func:`enqueue` inside their transaction. :class:`OutboxRelay` wakes on the
``lookout_outbox`` NOTIFY that an insert trigger sends (latency), polls as a fallback (a
missed notification, a listener that reconnects), and claims rows with
``FOR UPDATE SKIP LOCKED`` so several relays share the work without publishing a row twice
while both are alive. A relay that dies after publishing but before committing leaves its
rows to be published again: delivery is at-least-once, and consumers dedupe by message id.

Speed: a window of up to ``batch_size`` rows is published at once on the broker's
confirming channel (:meth:`~lookout_shared.publisher.Publisher.publish_window`: each
publish queues its frames and waits for its own confirm), and the confirmed rows are marked
sent by one ``UPDATE ... WHERE id = ANY($1)``: a window costs about one broker round trip
and two statements, not one round trip per row. While a backlog drains, the next window is
claimed and published while the one before waits for its confirms and commits
(``IN_FLIGHT`` windows, each in its own connection and transaction), so the relay does not
sit idle through those round trips.

Order: the publishes of a window are queued on the channel in id order, and a window holds
the relay's order lock from its claim until all its frames are queued, so the next window
(whose claim skips the rows the one before still locks) follows it on the channel. RabbitMQ
keeps a channel's order into each queue, so while publishes succeed one relay delivers its
rows in id order (a transaction's messages in the order :func:`enqueue` was called,
transactions about in commit order). Not kept: between several relays (each claims other
rows; their windows interleave), and for a row whose publish failed, which is published
again later, after the confirmed rows of its window and of the window that followed it, and
so may arrive after newer messages of the same entity. Consumers do not rely on more: each event carries its entity version and the
consumers that keep state order by it (the count aggregator ignores a version older than
the one it counted), and every consumer dedupes redeliveries by message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from lookout_shared import metrics, telemetry
from lookout_shared.broker import Broker, route_of
from lookout_shared.db import Conn
from lookout_shared.envelope import Envelope
from lookout_shared.outbox_window import mark_window, settle, window_span
from lookout_shared.publisher import Outgoing

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "lookout_outbox"
PUBLISH_TIMEOUT = 10.0
# Rows claimed and published at once: enough in flight to hide the broker's confirm round
# trip, few enough that one window's transaction stays short.
WINDOW = 500
# Windows in flight at once while a backlog drains: the next one is claimed and published
# while the one before waits for its confirms and commits.
IN_FLIGHT = 2
# While a backlog is drained window after window, its gauges are refreshed at most this often
# (seconds): a count query per window was one more round trip in every window.
BACKLOG_EVERY = 1.0


async def enqueue(
    conn: Conn, *envelopes: Envelope, headers: Mapping[str, Any] | None = None
) -> None:
    """Add messages to the outbox on ``conn``; call it inside the writer's transaction.

    The current trace context is stored with each row, so the relay's publish continues the
    trace of the request that caused it.

    One statement for any number of messages: each body is encoded once, by pydantic-core
    (no dict and ``json.dumps`` in between), and the rows are numbered in the order given
    (``WITH ORDINALITY``), so the relay publishes them in that order.
    """
    if not envelopes:
        return
    carried = dict(headers or {})
    telemetry.inject(carried)
    routes = [route_of(envelope.type) for envelope in envelopes]
    await conn.execute(
        """INSERT INTO outbox (message_id, message_type, exchange, routing_key, body, headers)
           SELECT m.id, m.type, m.exchange, m.routing_key, m.body::jsonb, $6
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                WITH ORDINALITY AS m(id, type, exchange, routing_key, body, n)
           ORDER BY m.n""",
        [envelope.id for envelope in envelopes],
        [envelope.type for envelope in envelopes],
        [exchange for exchange, _ in routes],
        [routing_key for _, routing_key in routes],
        [envelope.model_dump_json() for envelope in envelopes],
        carried,
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        dsn: str,
        *,
        batch_size: int = WINDOW,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._dsn = dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._order = asyncio.Lock()  # held from a window's claim until its frames are queued

    async def run(self) -> None:
        """Publish pending rows until cancelled.

        While a backlog lasts, the next window is claimed and published while the one
        before waits for its confirms (``IN_FLIGHT`` windows at most); once caught up, every
        window finishes before the relay waits for a NOTIFY or the poll.

        Cancelled, the relay first lets the windows in flight finish (each bounded by
        ``PUBLISH_TIMEOUT``): what RabbitMQ confirmed is marked sent, instead of being
        published again by the next relay.

        A supervisory loop, not a retry: it runs for the life of the process and a failed
        window is one more turn with a jittered pause, so tenacity would not make it simpler.
        """
        failures = 0
        backlog_due = 0.0
        windows: set[asyncio.Task[int]] = set()
        try:
            while True:
                await self._ensure_listener()
                self._wakeup.clear()
                try:
                    queued: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                    windows.add(asyncio.ensure_future(self._window(queued)))
                    # Shielded: a window whose publishes are queued finishes in any case.
                    caught_up = await asyncio.shield(queued) < self._batch_size
                    await settle(windows, keep=0 if caught_up else IN_FLIGHT - 1)
                    if caught_up or time.monotonic() >= backlog_due:
                        await self._record_backlog()
                        backlog_due = time.monotonic() + BACKLOG_EVERY
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = min(2.0**failures, 10.0) * random.uniform(0.5, 1.0)  # noqa: S311
                    log.warning("outbox relay: publish failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                if not caught_up:
                    continue  # more may be waiting
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the wait ends, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wakeup.wait()
        finally:
            if windows:
                await asyncio.wait(windows)
                for window in windows:
                    if not window.cancelled():
                        window.exception()  # the relay is stopping: retrieved, not raised
            if self._listener is not None:
                await self._listener.close()

    async def drain_once(self) -> int:
        """Publish one window of rows; returns how many were confirmed (and marked sent)."""
        return await self._window(asyncio.get_running_loop().create_future())

    async def _window(self, queued: asyncio.Future[int]) -> int:
        """Claim a window of rows, publish them at once, and mark those confirmed as sent, in
        the transaction that claimed them; returns how many were confirmed.

        ``queued`` is resolved with the number of rows claimed once their publishes are
        queued on the channel (0 if the claim failed): the next window may start then. The
        claim and the queueing of the publishes hold ``self._order``, so windows reach the
        channel in id order even while the previous one waits for its confirms (its rows,
        locked by its open transaction, are skipped by the next claim).

        A row whose publish failed (nacked, returned unroutable, timed out, connection lost)
        stays unsent, with the error, for a later window; the first such error is raised
        after the commit.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # The window's span lasts until its confirms are in, past the order lock.
                with contextlib.ExitStack() as span:
                    async with self._order:
                        # body::text: published as stored, not decoded and encoded again.
                        rows = await conn.fetch(
                            """SELECT id, message_id, message_type, exchange, routing_key,
                                      body::text AS body, headers
                               FROM outbox WHERE published_at IS NULL
                               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                            self._batch_size,
                        )
                        span.enter_context(window_span(rows))
                        window = await self._broker.publish_window(
                            [
                                Outgoing(
                                    row["exchange"],
                                    row["routing_key"],
                                    row["body"].encode(),
                                    str(row["message_id"]),
                                    row["message_type"],
                                    row["headers"],
                                )
                                for row in rows
                            ]
                        )
                    queued.set_result(len(rows))
                    results = await window.confirmed(within=PUBLISH_TIMEOUT)
                sent, failure = await mark_window(conn, rows, results)
        finally:
            if not queued.done():
                queued.set_result(0)
        if failure is not None:
            raise failure
        return sent

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
