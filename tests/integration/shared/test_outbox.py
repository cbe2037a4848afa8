"""The outbox relay against real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import asyncpg
import prometheus_client
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from aio_pika.exceptions import DeliveryError
from lookout_shared import metrics, outbox, topology
from lookout_shared.broker import Broker, route_of
from lookout_shared.contracts import CaptureSnapshot, SnapshotJobState
from lookout_shared.envelope import Envelope, make_envelope, parse_message


def capture() -> Envelope:
    job = uuid.uuid4()
    return make_envelope(
        "snapshot.capture",
        CaptureSnapshot(job_id=job, stream_id=uuid.uuid4()),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=job,
        entity_version=1,
    )


async def drain_queue(broker: Broker, name: str, expected: int) -> list[Envelope]:
    channel = await broker.connection.channel()
    queue = await channel.get_queue(name, ensure=False)
    got: list[Envelope] = []
    for _ in range(200):
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            if len(got) >= expected:
                break
            await asyncio.sleep(0.05)
            continue
        got.append(parse_message(message.body))
    await channel.close()
    return got


async def test_committed_rows_are_published_once_and_rolled_back_ones_never(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)).purge()
    await channel.close()
    kept, dropped = [capture() for _ in range(3)], capture()
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *kept)
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await outbox.enqueue(conn, dropped)
        await tx.rollback()

    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        got = await drain_queue(broker, topology.SNAPSHOT_CAPTURE, expected=3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert got == kept  # in commit order, each exactly once
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_notify_wakes_the_relay_before_the_poll(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], poll_interval=60)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # the relay is now waiting on its 60 s poll
        async with db.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, capture())
        for _ in range(100):
            if await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0:
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def take(queue: AbstractQueue, n: int) -> list[Envelope]:
    """The next ``n`` messages of ``queue``, in queue order (fails after a generous wait)."""
    got: list[Envelope] = []
    deadline = time.monotonic() + 30
    while len(got) < n:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            assert time.monotonic() < deadline, f"only {len(got)} of {n} messages arrived"
            await asyncio.sleep(0.05)
            continue
        got.append(parse_message(message.body))
    assert await queue.get(no_ack=True, fail=False) is None  # and no more
    return got


async def purged_capture_queue(broker: Broker) -> tuple[AbstractChannel, AbstractQueue]:
    """The capture queue, emptied, on a channel of its own for the test to close."""
    channel = await broker.connection.channel()
    queue = await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)
    await queue.purge()
    return channel, queue


async def committed_burst(db: asyncpg.Pool, n: int) -> list[Envelope]:
    """``n`` capture commands added to the outbox by one committed transaction."""
    burst = [capture() for _ in range(n)]
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *burst)
    return burst


async def unsent(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def test_a_burst_is_published_a_window_at_a_time_each_row_once_in_order(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    channel, queue = await purged_capture_queue(broker)
    burst = await committed_burst(db, 1200)
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=500)
    # Each drain publishes a whole window, with many publishes awaiting their confirms.
    assert [await relay.drain_once() for _ in range(4)] == [500, 500, 200, 0]
    assert await unsent(db) == 0
    assert await take(queue, len(burst)) == burst  # in commit order, each exactly once
    await channel.close()


async def test_rows_the_broker_refuses_stay_unsent_and_are_published_later(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    # A queue that takes 5 messages and nacks the publish of any more (reject-publish).
    channel = await broker.connection.channel()
    name = f"outbox-test-{uuid.uuid4().hex[:8]}"
    queue = await channel.declare_queue(
        name, exclusive=True, arguments={"x-max-length": 5, "x-overflow": "reject-publish"}
    )
    await queue.bind(topology.COMMANDS, routing_key=name)
    rows = [capture() for _ in range(10)]
    await db.executemany(
        """INSERT INTO outbox (message_id, message_type, exchange, routing_key, body, headers)
           VALUES ($1, $2, $3, $4, $5, '{}')""",
        [(e.id, e.type, topology.COMMANDS, name, e.model_dump(mode="json")) for e in rows],
    )
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=10)
    with pytest.raises(DeliveryError):
        await relay.drain_once()
    # The confirmed half is marked sent; the nacked half stays, with why.
    assert await take(queue, 5) == rows[:5]
    refused = await db.fetch(
        "SELECT message_id, attempts, last_error FROM outbox WHERE published_at IS NULL"
    )
    assert {r["message_id"] for r in refused} == {e.id for e in rows[5:]}
    assert all(r["attempts"] == 1 and r["last_error"] for r in refused)
    # The queue has room again: the next drain publishes the rest, and only the rest.
    assert await relay.drain_once() == 5
    assert await take(queue, 5) == rows[5:]
    assert await unsent(db) == 0
    await channel.close()


async def test_rows_not_confirmed_within_the_publish_timeout_stay_unsent(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *(capture() for _ in range(200)))
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=200)
    # No time at all for confirms: the window's deadline passes as its last message is
    # written. What RabbitMQ confirmed while the window was being written is marked sent;
    # the rest stays unsent, with why.
    monkeypatch.setattr(outbox, "PUBLISH_TIMEOUT", 0.0)
    with pytest.raises(TimeoutError):
        await relay.drain_once()
    late = await db.fetch("SELECT attempts, last_error FROM outbox WHERE published_at IS NULL")
    assert late
    assert all(r["attempts"] == 1 and "not confirmed" in r["last_error"] for r in late)
    monkeypatch.setattr(outbox, "PUBLISH_TIMEOUT", 10.0)
    assert await relay.drain_once() == len(late)  # published again (at least once), confirmed
    assert await unsent(db) == 0
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.SNAPSHOT_CAPTURE, ensure=False)).purge()
    await channel.close()


async def depth(broker: Broker, name: str) -> int:
    """Messages ready in ``name`` (a fresh passive declare: the broker's count now)."""
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    await channel.close()
    return queue.declaration_result.message_count or 0


async def test_a_relay_stopped_mid_window_marks_what_it_published_as_sent(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    channel, queue = await purged_capture_queue(broker)
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *(capture() for _ in range(1000)))
    # Stopped as soon as its first window reaches the queue, its publishes still in flight.
    deadline = time.monotonic() + 30
    while not await depth(broker, topology.SNAPSHOT_CAPTURE):
        assert time.monotonic() < deadline, "nothing was published"
        await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Every message RabbitMQ holds is marked sent: none will be published a second time.
    sent = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
    assert await depth(broker, topology.SNAPSHOT_CAPTURE) == sent
    assert sent % 500 == 0  # whole windows
    await queue.purge()
    await channel.close()


async def test_one_enqueue_of_many_messages_stores_them_in_order_with_their_routes(
    db: asyncpg.Pool,
) -> None:
    """enqueue writes every message of a call with one statement; the rows still number
    them in the order given (the order the relay publishes), each with its own route, its
    body as the envelope's JSON and the writer's headers."""
    job = uuid.uuid4()
    mixed = [
        capture(),
        make_envelope(
            "snapshot_job.failed",
            SnapshotJobState(stream_id=uuid.uuid4(), status="failed", attempts=1, error="x"),
            producer="tests",
            tenant_id=uuid.uuid4(),
            entity_id=job,
            entity_version=2,
        ),
        *(capture() for _ in range(300)),
    ]
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *mixed, headers={"x-writer": "tests"})
        await outbox.enqueue(conn)  # nothing to write is no statement and no error
    rows = await db.fetch(
        """SELECT message_id, message_type, exchange, routing_key, body, headers FROM outbox
           WHERE message_id = ANY($1::uuid[]) ORDER BY id""",
        [e.id for e in mixed],
    )
    assert [r["message_id"] for r in rows] == [e.id for e in mixed]
    assert [(r["exchange"], r["routing_key"]) for r in rows] == [route_of(e.type) for e in mixed]
    assert [r["body"] for r in rows] == [e.model_dump(mode="json") for e in mixed]
    assert all(r["headers"]["x-writer"] == "tests" for r in rows)
    await db.execute("DELETE FROM outbox WHERE message_id = ANY($1::uuid[])", [e.id for e in mixed])


def gauge(name: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(name)


async def test_the_backlog_gauges_read_empty_once_a_multi_window_burst_is_drained(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    """While windows follow each other the backlog is counted at most once a second, but
    the relay counts it again as it catches up: the gauges never stay at a drained burst."""
    channel, queue = await purged_capture_queue(broker)
    burst = await committed_burst(db, 450)
    metrics.OUTBOX_BACKLOG.set(-1)
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=100)
    task = asyncio.create_task(relay.run())
    try:
        deadline = time.monotonic() + 30
        while gauge("lookout_outbox_backlog_messages") != 0:
            assert time.monotonic() < deadline, "the backlog gauge never read 0"
            await asyncio.sleep(0.05)
        assert await unsent(db) == 0
        assert gauge("lookout_outbox_oldest_age_seconds") == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await take(queue, len(burst)) == burst
    await channel.close()
