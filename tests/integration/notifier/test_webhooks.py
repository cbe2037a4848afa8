"""Webhook deliveries from the notifier on loopback, with real Postgres, RabbitMQ and a
receiver served by uvicorn: signing, tenant isolation, retries, failed deliveries and their
replay, and one delivery per event across two notifier instances."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from functools import partial
from typing import Any

import asyncpg
import pytest
from lookout_notifier.adapters.webhooks_db import APPLICATION_NAME
from lookout_notifier.settings import NotifierSettings
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope
from lookout_shared.sealed import sealer_for
from prometheus_client import REGISTRY

from tests.integration.notifier.test_ws import job_event, serve_notifier, stream_event
from tests.integration.notifier.webhook_receiver import (
    Received,
    Receiver,
    serve_receiver,
    verify,
)

SECRET = "whsec_test-secret-of-enough-length-0123456789"
FAST = {
    "webhooks_enabled": True,
    "allowed_networks": "127.0.0.0/8",
    "webhook_attempts": 3,
    "webhook_retry_initial_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_replay_poll_seconds": 0.2,
    "webhook_circuit_threshold": 100,
}
LIFECYCLE = ["stream.created", "stream.updated", "stream.deleted", "snapshot_job.succeeded"]


async def tenant(db: asyncpg.Pool) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, f"t-{tenant_id.hex[:8]}"
    )
    return tenant_id


async def hook(db: asyncpg.Pool, tenant_id: uuid.UUID, url: str, events: list[str]) -> uuid.UUID:
    """A webhook row as the api writes it (its routes are tested in tests/integration/api)."""
    sealed = sealer_for(NotifierSettings()).seal(SECRET)
    hook_id: uuid.UUID = await db.fetchval(
        """INSERT INTO webhooks (tenant_id, url, events, secret_sealed)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        tenant_id,
        url,
        events,
        sealed,
    )
    return hook_id


async def publish(broker: Broker, *events: Envelope) -> None:
    for event in events:
        await broker.publish_envelope(event)


def lifecycle(tenant_id: uuid.UUID) -> list[Envelope]:
    stream = uuid.uuid4()
    return [
        stream_event("stream.created", stream, tenant_id),
        stream_event("stream.updated", stream, tenant_id),
        job_event(stream, tenant_id),
        stream_event("stream.deleted", stream, tenant_id),
    ]


def parsed(received: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in received]


async def test_a_streams_lifecycle_arrives_signed_and_verifiable(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        hook_id = await hook(db, tenant_id, receiver.url, LIFECYCLE)
        events = lifecycle(tenant_id)
        await publish(broker, *events)
        await receiver.until(lambda: len(receiver.received) == len(events))
    got = {body["id"]: body for body in parsed(receiver.received)}
    assert set(got) == {str(e.id) for e in events}
    for event in events:
        assert got[str(event.id)]["type"] == event.type
        assert got[str(event.id)]["tenant_id"] == str(tenant_id)
    for delivery in receiver.received:
        assert verify(SECRET, delivery.headers, delivery.body)
        event_id = json.loads(delivery.body)["id"]
        assert delivery.headers["webhook-id"] == f"{event_id}:{hook_id}"
        assert "url" not in json.loads(delivery.body)["data"]
    first = receiver.received[0]
    # The snippet refuses a changed body, a changed signature and an old timestamp.
    assert not verify(SECRET, first.headers, first.body + b" ")
    forged = {**first.headers, "webhook-signature": "v1=" + "0" * 64}
    assert not verify(SECRET, forged, first.body)
    old = str(int(time.time()) - 301)
    assert not verify(SECRET, {**first.headers, "webhook-timestamp": old}, first.body)


async def test_foreign_tenants_events_never_reach_a_hook(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    mine, theirs = await tenant(db), await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        await hook(db, mine, receiver.url, LIFECYCLE)
        foreign, own = lifecycle(theirs), lifecycle(mine)
        await publish(broker, *foreign, *own)
        await receiver.until(lambda: len(receiver.received) == len(own))
        # The foreign events were published first: had they matched, they would be here.
    assert {b["tenant_id"] for b in parsed(receiver.received)} == {str(mine)}


async def test_deliveries_arrive_after_the_receiver_comes_back(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    slow_retries = {**FAST, "webhook_attempts": 20, "webhook_retry_max_seconds": 0.3}
    async with serve_receiver() as receiver, serve_notifier(prefix, **slow_retries):
        receiver.status = 503
        await hook(db, tenant_id, receiver.url, LIFECYCLE)
        events = lifecycle(tenant_id)[:2]
        await publish(broker, *events)
        await receiver.until(lambda: receiver.refused >= 4)
        receiver.status = 200
        await receiver.until(lambda: len(receiver.received) == len(events))
    assert {b["id"] for b in parsed(receiver.received)} == {str(e.id) for e in events}
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == 0


async def test_a_delivery_past_the_retry_limit_is_listed_failed_and_replays(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        receiver.status = 503
        hook_id = await hook(db, tenant_id, receiver.url, ["stream.created"])
        event = lifecycle(tenant_id)[0]
        await publish(broker, event)
        await receiver.until(lambda: receiver.refused >= 3)
        row = await _until_row(db, "failed")
        assert (row["webhook_id"], row["event_id"], row["attempts"]) == (hook_id, event.id, 3)
        assert "503" in row["last_error"]
        receiver.status = 200
        # What POST /api/v1/webhooks/{id}/deliveries/{id}/replay does.
        await db.execute("UPDATE webhook_deliveries SET status = 'replay' WHERE id = $1", row["id"])
        await receiver.until(lambda: len(receiver.received) == 1)
        await _until_row(db, "delivered")
    delivered = receiver.received[0]
    assert verify(SECRET, delivered.headers, delivered.body)
    assert delivered.headers["webhook-id"] == f"{event.id}:{hook_id}"


async def test_two_notifiers_deliver_each_event_once(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with (
        serve_receiver() as receiver,
        serve_notifier(prefix, **FAST),
        serve_notifier(prefix, **FAST),
    ):
        await hook(db, tenant_id, receiver.url, LIFECYCLE)
        events = [e for _ in range(10) for e in lifecycle(tenant_id)]
        await publish(broker, *events)
        await receiver.until(lambda: len(receiver.received) >= len(events))
    ids = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(ids) == len(events)
    assert max(ids.values()) == 1


async def _until_row(db: asyncpg.Pool, status: str) -> asyncpg.Record:
    for _ in range(400):
        row = await db.fetchrow("SELECT * FROM webhook_deliveries WHERE status = $1", status)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    pytest.fail(f"no {status} delivery")


async def test_a_redirect_is_not_followed_and_fails_at_once(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        receiver.status = 302
        await hook(db, tenant_id, receiver.url, ["stream.created"])
        await publish(broker, lifecycle(tenant_id)[0])
        row = await _until_row(db, "failed")
    assert row["attempts"] == 1 and "redirects are not followed" in row["last_error"]
    assert receiver.refused == 1


async def _listening(db: asyncpg.Pool) -> None:
    """Until the notifier's webhook-change listener has run its LISTEN."""
    for _ in range(400):
        if await db.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE application_name = $1 AND query LIKE 'LISTEN%'""",
            APPLICATION_NAME,
        ):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the webhook-change listener never listened")


def _lookups(source: str) -> float:
    return REGISTRY.get_sample_value("lookout_webhook_lookups_total", {"source": source}) or 0.0


async def _second_hook_gets_the_next_event(
    db: asyncpg.Pool, broker: Broker, receiver: Receiver, tenant_id: uuid.UUID, first: uuid.UUID
) -> uuid.UUID:
    """Add a hook beside ``first``: the tenant's next event reaches both; the new hook's id."""
    second = await hook(db, tenant_id, receiver.url, LIFECYCLE)  # clears every cache
    added = lifecycle(tenant_id)[0]
    await publish(broker, added)
    await receiver.until(partial(_delivered_to, receiver, added, {str(first), str(second)}))
    return second


def _delivered_to(receiver: Receiver, event: Envelope, hooks: set[str]) -> bool:
    return _hook_ids(receiver.received, event) == hooks


def _hook_ids(received: list[Received], event: Envelope) -> set[str]:
    return {
        r.headers["webhook-id"].split(":")[1]
        for r in received
        if r.headers["webhook-id"].startswith(f"{event.id}:")
    }


async def test_a_tenants_hooks_come_from_the_cache_until_a_change_commits(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        first = await hook(db, tenant_id, receiver.url, LIFECYCLE)
        await _listening(db)
        # Once the listener is up, the tenant's hooks are looked up once, then cached.
        for _ in range(40):
            from_cache = _lookups("cache")
            event = lifecycle(tenant_id)[0]
            await publish(broker, event)
            await receiver.until(partial(_delivered_to, receiver, event, {str(first)}))
            if _lookups("cache") > from_cache:
                break
        else:
            pytest.fail("the tenant's hooks never came from the cache")

        second = await _second_hook_gets_the_next_event(db, broker, receiver, tenant_id, first)

        await db.execute("UPDATE webhooks SET disabled = true WHERE id = $1", first)
        after = lifecycle(tenant_id)[:2]
        await publish(broker, *after)
        only_second = {str(second)}
        await receiver.until(
            lambda: all(_hook_ids(receiver.received, e) == only_second for e in after)
        )


async def test_a_hook_added_while_the_change_listener_is_away_gets_the_next_event(
    db: asyncpg.Pool, broker: Broker, prefix: str
) -> None:
    tenant_id = await tenant(db)
    async with serve_receiver() as receiver, serve_notifier(prefix, **FAST):
        first = await hook(db, tenant_id, receiver.url, LIFECYCLE)
        await _listening(db)
        warm = lifecycle(tenant_id)[0]
        await publish(broker, warm)
        await receiver.until(partial(_delivered_to, receiver, warm, {str(first)}))
        # The listener's connection dies, and a hook is added before it is back: no cached
        # answer may hide it (the cache is not trusted while away, and starts empty again).
        killed = await db.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE application_name = $1""",
            APPLICATION_NAME,
        )
        assert killed == 1
        await _second_hook_gets_the_next_event(db, broker, receiver, tenant_id, first)
        await _listening(db)  # it reconnects by itself
