"""The Lua apply step against a real Redis: idempotent, order-tolerant, no ghosts."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from lookout_count_aggregator.adapters.memory import InMemoryCountStore
from lookout_count_aggregator.adapters.redis_counts import RedisCountStore
from lookout_count_aggregator.domain.contributions import contribution_of
from lookout_count_aggregator.domain.tally import platform_of, tally
from lookout_shared import contracts
from lookout_shared.count_keys import CountKeys
from lookout_shared.envelope import Envelope, make_envelope
from redis.asyncio import Redis

TTL = 3600


def stream(
    verb: str,
    entity_id: uuid.UUID,
    version: int,
    tenant: uuid.UUID,
    status: contracts.StreamStatus = "pending",
    height: int | None = None,
    tags: tuple[str, ...] = (),
    kind: str = "rtsp",
) -> Envelope:
    payload: contracts.Payload = (
        contracts.StreamDeleted()
        if verb == "deleted"
        else contracts.StreamState(
            name="cam", kind=kind, status=status, enabled=True, tags=list(tags), height=height
        )
    )
    return make_envelope(
        f"stream.{verb}",
        payload,
        producer="tests",
        tenant_id=tenant,
        entity_id=entity_id,
        entity_version=version,
    )


def store_for(redis: Redis, prefix: str) -> RedisCountStore:
    return RedisCountStore(redis, CountKeys(prefix), TTL)


async def apply(store: RedisCountStore, event: Envelope) -> dict[str, int]:
    return await store.apply(event.id, contribution_of(event))


async def test_same_event_twice_counts_once(redis: Redis, prefix: str) -> None:
    store, tenant = store_for(redis, prefix), uuid.uuid4()
    event = stream("created", uuid.uuid4(), 1, tenant, height=720, tags=("door",))
    first = await apply(store, event)
    assert await apply(store, event) == {}
    expected = {
        "streams_total": 1,
        "streams_status:pending": 1,
        "streams_kind:rtsp": 1,
        "streams_resolution:hd": 1,
        "streams_tag:door": 1,
    }
    assert first == expected
    assert await store.tenant_counts(tenant) == expected
    assert await store.platform_counts() == expected
    # The key names are the api's contract.
    raw = await redis.hgetall(f"{prefix}counts:tenant:{tenant}")
    assert raw[b"streams_total"] == b"1"


async def test_stale_version_changes_nothing(redis: Redis, prefix: str) -> None:
    store, tenant, sid = store_for(redis, prefix), uuid.uuid4(), uuid.uuid4()
    await apply(store, stream("updated", sid, 5, tenant, status="online"))
    before = await store.tenant_counts(tenant)
    assert await apply(store, stream("created", sid, 1, tenant, status="pending")) == {}
    assert await apply(store, stream("updated", sid, 5, tenant, status="error")) == {}
    assert await store.tenant_counts(tenant) == before
    assert before["streams_status:online"] == 1


async def test_update_moves_the_count_between_status_fields(redis: Redis, prefix: str) -> None:
    store, tenant, sid = store_for(redis, prefix), uuid.uuid4(), uuid.uuid4()
    await apply(store, stream("created", sid, 1, tenant, status="pending"))
    changes = await apply(store, stream("updated", sid, 2, tenant, status="online"))
    assert changes == {"streams_status:pending": 0, "streams_status:online": 1}
    counts = await store.tenant_counts(tenant)
    assert counts["streams_status:online"] == 1
    assert counts["streams_total"] == 1
    assert "streams_status:pending" not in counts  # zero counts are removed


async def test_delete_before_create_leaves_no_ghost(redis: Redis, prefix: str) -> None:
    store, tenant, sid = store_for(redis, prefix), uuid.uuid4(), uuid.uuid4()
    assert await apply(store, stream("deleted", sid, 3, tenant)) == {}
    assert await apply(store, stream("created", sid, 1, tenant)) == {}
    assert await apply(store, stream("updated", sid, 2, tenant, status="online")) == {}
    assert await store.tenant_counts(tenant) == {}
    assert await store.platform_counts() == {}
    # The tombstone remembers the version, for as long as event ids are remembered.
    key = f"{prefix}counts:entity:stream:{sid}"
    assert await redis.hgetall(key) == {b"version": b"3", b"gen": b"0"}
    assert 0 < await redis.ttl(key) <= TTL


async def test_delete_after_create_removes_the_contribution(redis: Redis, prefix: str) -> None:
    store, tenant, sid = store_for(redis, prefix), uuid.uuid4(), uuid.uuid4()
    await apply(store, stream("created", sid, 1, tenant, tags=("a",)))
    changes = await apply(store, stream("deleted", sid, 2, tenant))
    assert set(changes.values()) == {0}
    assert await store.tenant_counts(tenant) == {}


def history(rng: random.Random, tenants: list[uuid.UUID]) -> tuple[list[Envelope], list[Envelope]]:
    """Events of ~50 entities of every type, and each entity's final event."""
    events: list[Envelope] = []
    finals: list[Envelope] = []
    for _ in range(50):
        tenant, eid = rng.choice(tenants), uuid.uuid4()
        kind = rng.choice(["stream", "snapshot", "snapshot_job"])
        lifetime: list[Envelope] = []
        if kind == "stream":
            for version in range(1, rng.randint(2, 8)):
                lifetime.append(
                    stream(
                        "created" if version == 1 else "updated",
                        eid,
                        version,
                        tenant,
                        status=rng.choice(["pending", "online", "error", "disabled"]),
                        height=rng.choice([None, 480, 720, 1080, 2160]),
                        tags=tuple(rng.sample(["door", "yard", "roof", "gate"], rng.randint(0, 3))),
                        kind=rng.choice(["rtsp", "hls", "http"]),
                    )
                )
            if rng.random() < 0.3:
                lifetime.append(stream("deleted", eid, len(lifetime) + 1, tenant))
        elif kind == "snapshot":
            lifetime.append(
                make_envelope(
                    "snapshot.created",
                    contracts.SnapshotCreated(
                        stream_id=uuid.uuid4(),
                        job_id=uuid.uuid4(),
                        content_type="image/jpeg",
                        size_bytes=1,
                    ),
                    producer="tests",
                    tenant_id=tenant,
                    entity_id=eid,
                    entity_version=1,
                )
            )
            if rng.random() < 0.3:
                lifetime.append(
                    make_envelope(
                        "snapshot.deleted",
                        contracts.SnapshotDeleted(stream_id=uuid.uuid4()),
                        producer="tests",
                        tenant_id=tenant,
                        entity_id=eid,
                        entity_version=2,
                    )
                )
        else:
            path = [("queued", "queued"), ("started", "running")]
            path.append(rng.choice([("succeeded", "succeeded"), ("failed", "failed")]))
            for version, (verb, status) in enumerate(path[: rng.randint(1, 3)], start=1):
                lifetime.append(
                    make_envelope(
                        f"snapshot_job.{verb}",
                        contracts.SnapshotJobState(stream_id=uuid.uuid4(), status=status),
                        producer="tests",
                        tenant_id=tenant,
                        entity_id=eid,
                        entity_version=version,
                    )
                )
        events += lifetime
        finals.append(lifetime[-1])
    return events, finals


async def test_shuffled_redelivered_events_end_at_the_final_states(
    redis: Redis, prefix: str
) -> None:
    rng = random.Random(20240611)
    tenants = [uuid.uuid4() for _ in range(3)]
    events, finals = history(rng, tenants)
    deliveries = [e for e in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    assert len(deliveries) > 200

    store, twin = store_for(redis, prefix), InMemoryCountStore()
    for event in deliveries:
        await apply(store, event)
        await twin.apply(event.id, contribution_of(event))

    expected = tally(contribution_of(e) for e in finals)
    for tenant in tenants:
        want = dict(expected.get(tenant, Counter()))
        assert await store.tenant_counts(tenant) == want
        assert dict(twin.tenants.get(tenant, Counter())) == want
    assert await store.platform_counts() == dict(platform_of(expected.values()))


async def test_batches_sum_their_moves_and_end_where_one_at_a_time_ends(
    redis: Redis, prefix: str
) -> None:
    """A batch writes each tenant field once with the sum of its events' moves: the counts,
    the outcomes and the reported new values are those of applying the events one by one."""
    rng = random.Random(20261128)
    tenants = [uuid.uuid4() for _ in range(3)]
    events, finals = history(rng, tenants)
    deliveries = [e for e in events for _ in range(rng.randint(1, 2))]
    rng.shuffle(deliveries)
    items = [(e.id, contribution_of(e)) for e in deliveries]

    batched, single = store_for(redis, prefix), store_for(redis, f"{prefix}single:")
    outcomes: list[str] = []
    for i in range(0, len(items), 64):
        applied = await batched.apply_many(items[i : i + 64])
        outcomes += applied.outcomes
        for tenant, reported in applied.counts.items():
            # Every field a batch moved is reported with its value once the batch is in.
            now = await batched.tenant_counts(tenant)
            assert reported == {f: now.get(f, 0) for f in reported}
    assert outcomes == [(await single.apply_many([item])).outcomes[0] for item in items]

    expected = tally(contribution_of(e) for e in finals)
    for tenant in tenants:
        want = dict(expected.get(tenant, Counter()))
        assert await batched.tenant_counts(tenant) == want == await single.tenant_counts(tenant)
    assert await batched.platform_counts() == dict(platform_of(expected.values()))


async def test_a_field_whose_moves_cancel_in_a_batch_is_reported_unchanged(
    redis: Redis, prefix: str
) -> None:
    store, tenant, sid = store_for(redis, prefix), uuid.uuid4(), uuid.uuid4()
    await apply(store, stream("created", uuid.uuid4(), 1, tenant))
    batch = [stream("created", sid, 1, tenant, tags=("gate",)), stream("deleted", sid, 2, tenant)]
    applied = await store.apply_many([(e.id, contribution_of(e)) for e in batch])
    assert applied.outcomes == ["applied", "applied"] and applied.moved == [True, True]
    assert applied.counts[tenant] == {
        "streams_total": 1,
        "streams_status:pending": 1,
        "streams_kind:rtsp": 1,
        "streams_resolution:unknown": 1,
        "streams_tag:gate": 0,
    }
    assert await store.tenant_counts(tenant) == {
        "streams_total": 1,
        "streams_status:pending": 1,
        "streams_kind:rtsp": 1,
        "streams_resolution:unknown": 1,
    }
