"""Scale-out and limits of /ws against real servers: two instances on one Redis and
RabbitMQ, the per-user cap across them, rate limit, token expiry and re-authentication."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from lookout_notifier.adapters.redis_slots import RedisConnectionSlots
from lookout_shared.broker import Broker
from lookout_shared.redis import create_redis
from websockets.asyncio.client import connect

from .test_ws import (
    Notifier,
    closed_code,
    job_event,
    new_stream,
    recv,
    send,
    serve_notifier,
    subscribe,
)


@pytest.fixture
async def notifier(prefix: str) -> AsyncIterator[Notifier]:
    async with serve_notifier(prefix) as served:
        yield served


def token(notifier: Notifier, user: uuid.UUID, tenant: uuid.UUID, ttl: float = 300) -> str:
    return notifier.codec.issue(user, tenant, "viewer", timedelta(seconds=ttl))


def ws(notifier: Notifier, bearer: str) -> Any:
    return connect(f"{notifier.url}?token={bearer}")


# Two instances ---------------------------------------------------------------------------


async def test_two_instances_both_deliver_to_their_own_clients(prefix: str, broker: Broker) -> None:
    tenant = uuid.uuid4()
    async with serve_notifier(prefix) as first, serve_notifier(prefix) as second:
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        async with first.connect(tenant) as a, second.connect(tenant) as b:
            assert (await subscribe(a, room))["seq"] == (await subscribe(b, room))["seq"] == 1
            events = [job_event(stream, tenant) for _ in range(3)]
            for event in events:
                await broker.publish_envelope(event)
            got_a = [await recv(a) for _ in events]
            got_b = [await recv(b) for _ in events]
            # Both instances agree on one seq per event (assigned once, in Redis).
            assert got_a == got_b
            assert [f["seq"] for f in got_a] == [2, 3, 4]
            assert [f["entity_id"] for f in got_a] == [str(e.entity_id) for e in events]


async def test_connection_cap_holds_across_instances_and_frees_on_close(
    prefix: str, broker: Broker
) -> None:
    user, tenant = uuid.uuid4(), uuid.uuid4()
    async with (
        serve_notifier(prefix, max_connections_per_user=2) as first,
        serve_notifier(prefix, max_connections_per_user=2) as second,
    ):
        bearer = token(first, user, tenant)
        async with ws(first, bearer) as one, ws(second, bearer) as two:
            for conn in (one, two):
                await send(conn, op="ping")
                assert await recv(conn) == {"op": "pong"}
            async with ws(first, bearer) as third:
                assert await closed_code(third) == 1008
            async with ws(second, token(second, uuid.uuid4(), tenant)) as someone_else:
                await send(someone_else, op="ping")
                assert await recv(someone_else) == {"op": "pong"}
        async with ws(second, bearer) as again:  # both slots given back on close
            await send(again, op="ping")
            assert await recv(again) == {"op": "pong"}


async def test_slots_of_a_crashed_instance_lapse(prefix: str, stack: dict[str, str]) -> None:
    user, tenant = uuid.uuid4(), uuid.uuid4()
    redis = create_redis(stack["LOOKOUT_REDIS_URL"])
    try:
        crashed = RedisConnectionSlots(redis, prefix, lease_seconds=0.5)  # never renewed
        assert await crashed.acquire(user, uuid.uuid4(), 1)
        async with serve_notifier(prefix, max_connections_per_user=1) as notifier:
            bearer = token(notifier, user, tenant)
            async with ws(notifier, bearer) as refused:
                assert await closed_code(refused) == 1008
            await asyncio.sleep(0.6)
            async with ws(notifier, bearer) as accepted:
                await send(accepted, op="ping")
                assert await recv(accepted) == {"op": "pong"}
    finally:
        await redis.aclose()


# Rate limit, expiry, re-authentication, frames --------------------------------------------


async def test_client_sending_too_fast_is_closed_with_1008(prefix: str) -> None:
    async with (
        serve_notifier(prefix, client_rate_per_second=1, client_burst=3) as notifier,
        notifier.connect(uuid.uuid4()) as client,
    ):
        for _ in range(10):
            await send(client, op="ping")
        assert await closed_code(client) == 1008


async def test_expired_token_closes_with_1008_unless_renewed(notifier: Notifier) -> None:
    user, tenant = uuid.uuid4(), uuid.uuid4()
    async with (
        ws(notifier, token(notifier, user, tenant, ttl=2)) as expiring,
        ws(notifier, token(notifier, user, tenant, ttl=2)) as renewed,
    ):
        await send(renewed, op="auth", token=token(notifier, user, tenant))
        assert (await recv(renewed))["op"] == "authenticated"
        assert await closed_code(expiring) == 1008
        await send(renewed, op="ping")
        assert await recv(renewed) == {"op": "pong"}


async def test_binary_and_malformed_frames_get_errors(notifier: Notifier) -> None:
    async with notifier.connect(uuid.uuid4()) as client:
        await client.send(b"\x00\x01")
        assert (await recv(client))["code"] == "bad_frame"
        await send(client, op="subscribe", room=f"stream:{uuid.uuid4()}", since="yesterday")
        assert (await recv(client))["code"] == "bad_frame"
        await send(client, op="auth", token=42)
        assert (await recv(client))["code"] == "bad_frame"
