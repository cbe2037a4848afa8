"""The outbox relay's overlapping windows against real Postgres and RabbitMQ: order, a failed
row among confirmed ones, a stop with two windows in flight, and a broker outage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from aio_pika.exceptions import PublishError
from lookout_shared import outbox, topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_shared.envelope import Envelope, make_envelope, parse_message
from lookout_shared.publisher import Outgoing, Window

ROOT = Path(__file__).resolve().parents[3]


class WatchedWindow(Window):
    """A window that tells its broker when its confirms are in, after a pause as long as a
    remote broker's confirm round trip (on loopback they come back before the next window
    could be claimed, and the overlap would not show)."""

    def __init__(self, inner: Window, broker: WatchedBroker) -> None:
        self._inner = inner
        self._broker = broker

    async def confirmed(self, within: float | None) -> list[BaseException | None]:
        try:
            await asyncio.sleep(0.05)
            return await self._inner.confirmed(within)
        finally:
            self._broker.in_flight -= 1


class WatchedBroker(Broker):
    """The broker, counting the windows whose publishes are queued and not yet confirmed."""

    def __init__(self, url: str) -> None:
        super().__init__(url, producer="tests")
        self.in_flight = 0
        self.most_in_flight = 0
        self.queued = 0
        self.two_in_flight = asyncio.Event()
        self.first_queued = asyncio.Event()

    async def publish_window(self, messages: Sequence[Outgoing]) -> Window:
        window = await super().publish_window(messages)
        if not messages:
            return window
        self.queued += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.first_queued.set()
        if self.in_flight >= 2:
            self.two_in_flight.set()
        return WatchedWindow(window, self)


@pytest.fixture
async def watched(stack: dict[str, str]) -> AsyncIterator[WatchedBroker]:
    broker = WatchedBroker(stack["LOOKOUT_AMQP_URL"])
    await broker.connect()
    yield broker
    await broker.close()


def versioned(entities: list[uuid.UUID], n: int) -> list[Envelope]:
    """``n`` capture and probe commands about ``entities`` in turn, each entity's versions
    counting up: their order in each queue is visible in the messages themselves."""
    versions = dict.fromkeys(entities, 0)
    burst = []
    for i in range(n):
        entity = entities[i % len(entities)]
        versions[entity] += 1
        payload = (
            CaptureSnapshot(job_id=uuid.uuid4(), stream_id=entity)
            if (i // 7) % 2
            else ProbeStream(stream_ids=[entity])
        )
        burst.append(
            make_envelope(
                topology.SNAPSHOT_CAPTURE if (i // 7) % 2 else topology.STREAM_PROBE,
                payload,
                producer="tests",
                tenant_id=entities[0],
                entity_id=entity,
                entity_version=versions[entity],
            )
        )
    return burst


async def purged(broker: Broker, *names: str) -> None:
    channel = await broker.connection.channel()
    for name in names:
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()


async def drained(broker: Broker, name: str) -> list[Envelope]:
    """Every message in ``name`` now, in queue order (the queue is left empty)."""
    channel = await broker.connection.channel()
    queue = await channel.get_queue(name, ensure=False)
    got = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        got.append(parse_message(message.body))
    await channel.close()
    return got


async def unsent(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def until_unsent(db: asyncpg.Pool, left: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while await unsent(db) > left:
        assert time.monotonic() < deadline, f"{await unsent(db)} rows still unsent"
        await asyncio.sleep(0.05)


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_until_unsent(relay: outbox.OutboxRelay, db: asyncpg.Pool, left: int) -> None:
    """Run ``relay`` until at most ``left`` rows are unsent, then stop it."""
    task = asyncio.create_task(relay.run())
    try:
        await until_unsent(db, left)
    finally:
        await stopped(task)


async def test_overlapping_windows_deliver_each_queue_in_id_order(
    db: asyncpg.Pool, watched: WatchedBroker, stack: dict[str, str]
) -> None:
    await purged(watched, topology.SNAPSHOT_CAPTURE, topology.STREAM_PROBE)
    burst = versioned([uuid.uuid4() for _ in range(3)], 1000)
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *burst)
    relay = outbox.OutboxRelay(db, watched, stack["LOOKOUT_DATABASE_URL"], batch_size=100)
    await run_until_unsent(relay, db, 0)
    # The next window was published while the one before waited for its confirms, never
    # more than IN_FLIGHT at once; each queue still holds its messages in id order.
    assert watched.queued == 10
    assert watched.most_in_flight == outbox.IN_FLIGHT
    for queue in (topology.SNAPSHOT_CAPTURE, topology.STREAM_PROBE):
        assert await drained(watched, queue) == [e for e in burst if e.type == queue]


async def test_an_unroutable_row_mid_window_fails_alone_and_later_windows_go_on(
    db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    await purged(broker, topology.SNAPSHOT_CAPTURE)
    good = [e for e in versioned([uuid.uuid4()], 20) if e.type == topology.SNAPSHOT_CAPTURE]
    lost = good[0].model_copy(update={"id": uuid.uuid4()})
    rows = [(e, topology.SNAPSHOT_CAPTURE) for e in good[:5]]
    rows += [(lost, f"nowhere-{uuid.uuid4().hex[:8]}")]  # bound to no queue
    rows += [(e, topology.SNAPSHOT_CAPTURE) for e in good[5:]]
    await db.executemany(
        """INSERT INTO outbox (message_id, message_type, exchange, routing_key, body, headers)
           VALUES ($1, $2, $3, $4, $5, '{}')""",
        [(e.id, e.type, topology.COMMANDS, key, e.model_dump(mode="json")) for e, key in rows],
    )
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=len(rows))
    with pytest.raises(PublishError):
        await relay.drain_once()
    # Only the unroutable row failed, with why; the rest of its window is sent, in order.
    failed = await db.fetch(
        "SELECT message_id, attempts, last_error FROM outbox WHERE published_at IS NULL"
    )
    assert [(r["message_id"], r["attempts"]) for r in failed] == [(lost.id, 1)]
    assert "PublishError" in failed[0]["last_error"]
    assert await drained(broker, topology.SNAPSHOT_CAPTURE) == good

    # A window failing again and again does not hold back the windows after it.
    more = [e for e in versioned([uuid.uuid4()], 600) if e.type == topology.SNAPSHOT_CAPTURE]
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *more)
    relay = outbox.OutboxRelay(db, broker, stack["LOOKOUT_DATABASE_URL"], batch_size=50)
    await run_until_unsent(relay, db, 1)
    assert await drained(broker, topology.SNAPSHOT_CAPTURE) == more
    assert await db.fetchval("SELECT message_id FROM outbox WHERE published_at IS NULL") == lost.id


async def test_a_relay_stopped_with_two_windows_in_flight_marks_both_sent(
    db: asyncpg.Pool, watched: WatchedBroker, stack: dict[str, str]
) -> None:
    await purged(watched, topology.SNAPSHOT_CAPTURE, topology.STREAM_PROBE)
    burst = versioned([uuid.uuid4()], 3000)
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, *burst)
    relay = outbox.OutboxRelay(db, watched, stack["LOOKOUT_DATABASE_URL"], batch_size=100)
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(watched.two_in_flight.wait(), 30)
    await stopped(task)
    # Both windows in flight finished: what RabbitMQ holds is exactly what is marked sent,
    # in id order, and the rest is unsent (nothing lost, nothing sent twice).
    assert watched.in_flight == 0
    sent = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
    assert sent >= 200 and sent % 100 == 0
    assert sent + await unsent(db) == len(burst)
    arrived = await drained(watched, topology.SNAPSHOT_CAPTURE)
    arrived += await drained(watched, topology.STREAM_PROBE)
    assert sorted(e.entity_version for e in arrived) == list(range(1, sent + 1))


def rabbit(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], env=os.environ, check=True)


async def test_rows_in_flight_when_rabbitmq_stops_are_published_after_it_is_back(
    db: asyncpg.Pool, watched: WatchedBroker, stack: dict[str, str]
) -> None:
    await purged(watched, topology.SNAPSHOT_CAPTURE, topology.STREAM_PROBE)
    burst = versioned([uuid.uuid4()], 20_000)
    relay = outbox.OutboxRelay(db, watched, stack["LOOKOUT_DATABASE_URL"], poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        async with db.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, *burst)
        await asyncio.wait_for(watched.first_queued.wait(), 30)
        await asyncio.to_thread(rabbit, "stop-rabbitmq")
        assert await unsent(db) > 0, "the burst was sent before RabbitMQ stopped"
        await asyncio.to_thread(rabbit, "start-rabbitmq")
        await until_unsent(db, 0, seconds=120)
    finally:
        await stopped(task)
    # Every message arrived (at least once: a publish whose confirm was lost is sent again).
    arrived = await drained(watched, topology.SNAPSHOT_CAPTURE)
    arrived += await drained(watched, topology.STREAM_PROBE)
    assert {e.id for e in arrived} == {e.id for e in burst}
