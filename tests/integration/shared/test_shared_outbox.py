"""The outbox relay against real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
from lookout_shared import outbox, topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import CaptureSnapshot
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
