"""The aggregator as wired by bootstrap, through the real broker and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aio_pika.exceptions import DeliveryError
from lookout_count_aggregator.bootstrap import bootstrap
from lookout_count_aggregator.settings import AggregatorSettings
from lookout_shared import contracts, topology
from lookout_shared.broker import Broker
from lookout_shared.count_keys import CountKeys
from lookout_shared.envelope import Envelope, make_envelope, parse_message
from lookout_shared.queues import REASON_HEADER
from redis.asyncio import Redis

from tests.conftest import trust_counts


def stream(
    verb: str, sid: uuid.UUID, version: int, tenant: uuid.UUID | None, status: str = "pending"
) -> Envelope:
    payload: contracts.Payload = (
        contracts.StreamDeleted()
        if verb == "deleted"
        else contracts.StreamState(name="cam", kind="hls", status=status, enabled=True, height=2160)
    )
    return make_envelope(
        f"stream.{verb}",
        payload,
        producer="tests",
        tenant_id=tenant,
        entity_id=sid,
        entity_version=version,
    )


async def purge(broker: Broker, *names: str) -> None:
    channel = await broker.connection.channel()
    for name in names:
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()


async def wait_for_counts(redis: Redis, key: str, expected: dict[bytes, bytes]) -> None:
    for _ in range(200):
        if await redis.hgetall(key) == expected:
            return
        await asyncio.sleep(0.05)
    assert await redis.hgetall(key) == expected


async def test_events_through_the_broker_reach_the_counts(
    broker: Broker, redis: Redis, prefix: str
) -> None:
    dead = f"{topology.AGGREGATOR_EVENTS}.dead"
    await purge(broker, topology.AGGREGATOR_EVENTS, dead)
    # Listen for counts.changed as a notifier would.
    channel = await broker.connection.channel()
    listener = await topology.declare_instance_queue(channel, ("counts.changed",))

    tenant, s1, s2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    settings = AggregatorSettings(
        redis_prefix=prefix, counts_debounce_ms=100, drift_check_interval_seconds=0
    )
    await trust_counts(redis, prefix)  # counts from the events alone, no rebuild first
    aggregator = await bootstrap(settings)
    await aggregator.start()
    try:
        unusable = stream("created", uuid.uuid4(), 1, None)
        events = [
            stream("created", s1, 1, tenant),
            unusable,  # dead-lettered; the consumer goes on
            stream("updated", s1, 2, tenant, status="online"),
            stream("created", s1, 1, tenant),  # stale
            stream("created", s2, 1, tenant),
            stream("deleted", s2, 2, tenant),
        ]
        events.insert(3, events[2])  # a redelivery
        for event in events:
            await broker.publish_envelope(event)

        key = CountKeys(prefix).tenant(tenant)
        await wait_for_counts(
            redis,
            key,
            {
                b"streams_total": b"1",
                b"streams_status:online": b"1",
                b"streams_kind:hls": b"1",
                b"streams_resolution:uhd": b"1",
            },
        )
        assert await redis.hgetall(CountKeys(prefix).platform()) == await redis.hgetall(key)

        dead_queue = await channel.get_queue(dead, ensure=False)
        for _ in range(100):
            parked = await dead_queue.get(no_ack=True, fail=False)
            if parked is not None:
                break
            await asyncio.sleep(0.05)
        assert parked is not None
        assert parked.message_id == str(unusable.id)
        assert "no tenant_id" in str((parked.headers or {})[REASON_HEADER])

        # The debounced announcements add up to the final counts of the tenant.
        announced: dict[str, int] = {}
        for _ in range(100):
            message = await listener.get(no_ack=True, fail=False)
            if message is None:
                if announced.get("streams_status:online") == 1:
                    break
                await asyncio.sleep(0.05)
                continue
            envelope = parse_message(message.body)
            assert envelope.tenant_id == tenant
            change = contracts.CountsChanged.model_validate(envelope.data)
            assert change.scope == str(tenant)
            announced.update(change.changes)
        assert {k: v for k, v in announced.items() if v} == {
            "streams_total": 1,
            "streams_status:online": 1,
            "streams_kind:hls": 1,
            "streams_resolution:uhd": 1,
        }
    finally:
        await aggregator.stop()
        await topology.release_instance_queue(listener, ("counts.changed",))  # as notifiers do
        await channel.close()


async def test_without_a_notifier_counts_changed_is_dropped_and_service_goes_on(
    broker: Broker, redis: Redis, prefix: str
) -> None:
    await purge(broker, topology.AGGREGATOR_EVENTS)
    tenant = uuid.uuid4()
    settings = AggregatorSettings(
        redis_prefix=prefix, counts_debounce_ms=10, drift_check_interval_seconds=0
    )
    await trust_counts(redis, prefix)  # counts from the events alone, no rebuild first
    aggregator = await bootstrap(settings)
    await aggregator.start()
    try:
        key = CountKeys(prefix).tenant(tenant)
        for n in range(1, 4):
            await broker.publish_envelope(stream("created", uuid.uuid4(), 1, tenant))
            await wait_for_counts(
                redis,
                key,
                {
                    b"streams_total": str(n).encode(),
                    b"streams_status:pending": str(n).encode(),
                    b"streams_kind:hls": str(n).encode(),
                    b"streams_resolution:uhd": str(n).encode(),
                },
            )
            await asyncio.sleep(0.05)  # let the unroutable announcement happen
        assert not any(t.done() for t in aggregator.tasks)
    finally:
        await aggregator.stop()


async def test_unroutable_publish_is_a_delivery_error(broker: Broker) -> None:
    """What the publisher relies on: counts.changed with no notifier bound raises."""
    tenant = uuid.uuid4()
    envelope = make_envelope(
        "counts.changed",
        contracts.CountsChanged(scope=str(tenant), changes={"x": 1}),
        producer="tests",
        tenant_id=tenant,
        entity_id=tenant,
        entity_version=1,
    )
    with pytest.raises(DeliveryError):
        await broker.publish_envelope(envelope)


async def test_poison_and_unknown_events_are_dead_lettered_and_consuming_goes_on(
    broker: Broker, redis: Redis, prefix: str
) -> None:
    dead = f"{topology.AGGREGATOR_EVENTS}.dead"
    await purge(broker, topology.AGGREGATOR_EVENTS, dead)
    tenant = uuid.uuid4()
    await trust_counts(redis, prefix)
    aggregator = await bootstrap(
        AggregatorSettings(redis_prefix=prefix, drift_check_interval_seconds=0)
    )
    await aggregator.start()
    try:
        unknown = stream("created", uuid.uuid4(), 1, tenant).model_copy(
            update={"type": "snapshot.exploded"}
        )
        poison = [
            (b"{not json", "stream.created", "poison-1"),
            (unknown.to_bytes(), "snapshot.exploded", "poison-2"),
        ]
        for body, key, message_id in poison:
            await broker.publish(
                topology.EVENTS, key, body, message_id=message_id, message_type=key
            )
        await broker.publish_envelope(stream("created", uuid.uuid4(), 1, tenant))
        key = CountKeys(prefix).tenant(tenant)
        for _ in range(200):
            if await redis.hget(key, "streams_total") == b"1":
                break
            await asyncio.sleep(0.05)
        assert await redis.hget(key, "streams_total") == b"1"

        channel = await broker.connection.channel()
        dead_queue = await channel.get_queue(dead, ensure=False)
        reasons: dict[str, str] = {}
        for _ in range(100):
            parked = await dead_queue.get(no_ack=True, fail=False)
            if parked is not None:
                reasons[parked.message_id or ""] = str((parked.headers or {})[REASON_HEADER])
            elif len(reasons) == 2:
                break
            else:
                await asyncio.sleep(0.05)
        await channel.close()
        assert "invalid envelope" in reasons["poison-1"]
        assert "unknown message type 'snapshot.exploded'" in reasons["poison-2"]
    finally:
        await aggregator.stop()
