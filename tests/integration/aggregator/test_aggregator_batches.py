"""Batches through the real broker and Redis: one Lua call and one ack per batch, poison
messages parked alone, a crash between the write and the ack harmless, replicas side by
side."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from lookout_count_aggregator.bootstrap import Aggregator, bootstrap
from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.ports import Applied, CountStore
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.queues import REASON_HEADER
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.conftest import trust_counts
from tests.integration.aggregator.test_aggregator_service import purge, stream
from tests.integration.aggregator.test_aggregator_storm import (
    CONSUMER,
    DEAD,
    SqlCounts,
    consumer_env,
    dead_letters,
    make_fleet,
    publish_storm,
    redis_counts,
)

PATIENCE_SECONDS = 60


def lua_calls() -> float:
    return REGISTRY.get_sample_value("lookout_aggregator_apply_duration_seconds_count") or 0.0


def applies(outcome: str) -> float:
    value = REGISTRY.get_sample_value("lookout_aggregator_applies_total", {"outcome": outcome})
    return value or 0.0


async def ready_depth(broker: Broker, name: str = topology.AGGREGATOR_EVENTS) -> int:
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    await channel.close()
    return queue.declaration_result.message_count or 0


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def batch_settings(prefix: str, batch: int, wait_ms: float, prefetch: int) -> AggregatorSettings:
    return AggregatorSettings(
        redis_prefix=prefix,
        drift_check_interval_seconds=0,
        aggregator_batch=batch,
        aggregator_batch_wait_ms=wait_ms,
        aggregator_prefetch=prefetch,
    )


async def test_a_batch_is_one_lua_call_and_one_multiple_ack_leaves_nothing_unacked(
    broker: Broker, redis: Redis, prefix: str
) -> None:
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    tenant = uuid.uuid4()
    events = [stream("created", uuid.uuid4(), 1, tenant) for _ in range(300)]
    await asyncio.gather(*(broker.publish_envelope(e) for e in events))
    await trust_counts(redis, prefix)
    key = CountKeys(prefix).tenant(tenant)
    calls = lua_calls()
    # Its own broker connection: stopping it hands back whatever it did not ack.
    aggregator = await bootstrap(batch_settings(prefix, 100, 200, 300), redis=redis)
    await aggregator.start()
    try:
        await wait_until(lambda: _total(redis, key, 300), "the 300 events were never all counted")
        # Batches of up to 100: a handful of Lua calls, not one per event.
        assert 3 <= lua_calls() - calls <= 10
    finally:
        await aggregator.stop()  # closes its connection: unacked messages are requeued
    # Every delivery was acked, though only the last of each batch was acked by tag.
    assert await ready_depth(broker) == 0
    assert await dead_letters(broker) == 0


async def _total(redis: Redis, key: str, n: int) -> bool:
    return int(await redis.hget(key, "streams_total") or 0) == n


async def test_poison_messages_mid_batch_are_dead_lettered_alone_and_the_rest_counted(
    broker: Broker, redis: Redis, prefix: str
) -> None:
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    tenant = uuid.uuid4()
    unusable = stream("created", uuid.uuid4(), 1, None)
    for e in [stream("created", uuid.uuid4(), 1, tenant) for _ in range(50)]:
        await broker.publish_envelope(e)
    await broker.publish(
        topology.EVENTS,
        "stream.created",
        b"{not json",
        message_id="malformed",
        message_type="stream.created",
    )
    await broker.publish_envelope(unusable)
    for e in [stream("created", uuid.uuid4(), 1, tenant) for _ in range(50)]:
        await broker.publish_envelope(e)
    await trust_counts(redis, prefix)
    key = CountKeys(prefix).tenant(tenant)
    calls = lua_calls()
    aggregator = await bootstrap(batch_settings(prefix, 200, 300, 200), redis=redis)
    await aggregator.start()
    try:
        await wait_until(lambda: _total(redis, key, 100), "the valid events were not counted")
        await wait_until(lambda: _dead_at_least(broker, 2), "the poison was not parked")
        assert lua_calls() - calls <= 3  # the valid ones went in (almost) one call
    finally:
        await aggregator.stop()
    assert await ready_depth(broker) == 0
    channel = await broker.connection.channel()
    parked = await channel.get_queue(DEAD, ensure=False)
    reasons = {}
    for _ in range(2):
        message = await parked.get(no_ack=True, fail=False)
        assert message is not None
        reasons[message.message_id] = str((message.headers or {})[REASON_HEADER])
    await channel.close()
    assert "invalid envelope" in reasons["malformed"]
    assert "no tenant_id" in reasons[str(unusable.id)]


async def _dead_at_least(broker: Broker, n: int) -> bool:
    return await dead_letters(broker) >= n


async def test_a_batch_written_but_not_acked_is_redelivered_and_counts_stay_exact(
    db: asyncpg.Pool,
    redis: Redis,
    broker: Broker,
    prefix: str,
    stack: dict[str, str],
    sql_counts: SqlCounts,
) -> None:
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    fleet = await make_fleet(db, random.Random(7), streams=150, tenants=2)
    expected = await sql_counts()
    scopes = [*map(str, fleet.tenants), "platform"]
    keys = CountKeys(prefix)
    await trust_counts(redis, prefix)
    await asyncio.gather(*(broker.publish_envelope(e) for e in fleet.events))
    # It dies right after writing its first batch to Redis, before acking it.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CONSUMER),
        env=consumer_env(
            stack,
            prefix,
            STORM_KILL_AFTER="1",
            LOOKOUT_AGGREGATOR_BATCH="100",
            LOOKOUT_AGGREGATOR_BATCH_WAIT_MS="300",
        ),
    )
    assert await asyncio.wait_for(process.wait(), PATIENCE_SECONDS) == -signal.SIGKILL
    written = len([k async for k in redis.scan_iter(match=keys.seen("*"), count=1000)])
    assert written > 1  # a batch of several events reached Redis
    # Nothing was acked: the broker hands every event out again.
    await wait_until(
        lambda: _depth_is(broker, len(fleet.events)), "the unacked batch was not requeued"
    )
    duplicates = applies("duplicate")
    aggregator = await bootstrap(batch_settings(prefix, 100, 5, 200), redis=redis)
    await aggregator.start()
    try:
        want = {s: expected.get(s, {}) for s in scopes}
        await wait_until(lambda: _counts_are(redis, keys, scopes, want), "counts differ")
        # The redelivered batch changed nothing the second time.
        assert applies("duplicate") - duplicates == written
    finally:
        await aggregator.stop()
    assert await dead_letters(broker) == 0


async def _depth_is(broker: Broker, n: int) -> bool:
    return await ready_depth(broker) == n


async def _counts_are(
    redis: Redis, keys: CountKeys, scopes: list[str], want: dict[str, dict[str, int]]
) -> bool:
    return await redis_counts(redis, keys, scopes) == want


class CountingStore:
    """The real store, counting the events this replica applied."""

    def __init__(self, store: CountStore) -> None:
        self._store = store
        self.events = 0

    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        self.events += len(events)
        return await self._store.apply_many(events)


async def test_two_batching_replicas_side_by_side_end_equal_to_sql(
    db: asyncpg.Pool,
    redis: Redis,
    broker: Broker,
    prefix: str,
    sql_counts: SqlCounts,
) -> None:
    rng = random.Random(8)
    await purge(broker, topology.AGGREGATOR_EVENTS, DEAD)
    fleet = await make_fleet(db, rng, streams=300, tenants=3)
    expected = await sql_counts()
    scopes = [*map(str, fleet.tenants), "platform"]
    keys = CountKeys(prefix)
    await trust_counts(redis, prefix)
    replicas: list[Aggregator] = []
    stores: list[CountingStore] = []
    try:
        for _ in range(2):
            replica = await bootstrap(batch_settings(prefix, 16, 5, 32), redis=redis)
            stores.append(CountingStore(replica.store))
            replica.store = stores[-1]
            await replica.start()
            replicas.append(replica)
        await publish_storm(broker, fleet.events, rng)
        want = {s: expected.get(s, {}) for s in scopes}
        await wait_until(lambda: _counts_are(redis, keys, scopes, want), "counts differ")
    finally:
        for replica in replicas:
            await replica.stop()
    assert all(store.events > 0 for store in stores), [s.events for s in stores]
    assert await ready_depth(broker) == 0
    assert await dead_letters(broker) == 0
