"""Scale-out and limits against real servers: two instances on one Redis and RabbitMQ, the
per-user cap across them, rate limit, token expiry and re-authentication, SSE."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from lookout_notifier.adapters.redis_slots import RedisConnectionSlots
from lookout_shared.broker import Broker
from lookout_shared.redis import create_redis
from websockets.asyncio.client import connect

from .test_ws import (
    TIMEOUT,
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


# SSE ---------------------------------------------------------------------------------------


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Each event as {"id": ..., "data": ...} or {"comment": ...}."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            field, _, value = line.partition(": ")
            event[field] = json.loads(value) if field == "data" else value


async def take(events: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < n:
        event = await asyncio.wait_for(anext(events), TIMEOUT)
        if "comment" not in event:
            got.append(event)
    return got


async def test_sse_delivers_and_resumes_from_last_event_id(
    notifier: Notifier, broker: Broker
) -> None:
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    rooms = f"stream:{stream},tenant:{tenant}"
    bearer = notifier.token(tenant)
    url = f"http://127.0.0.1:{notifier.port}/sse"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        async with client.stream(
            "GET", url, params={"rooms": rooms}, headers={"Authorization": f"Bearer {bearer}"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            acks = await take(events, 2)
            assert [a["data"]["op"] for a in acks] == ["subscribed", "subscribed"]
            await broker.publish_envelope(job_event(stream, tenant))
            first = await take(events, 2)
            assert [e["data"]["room"] for e in first] == [f"stream:{stream}", f"tenant:{tenant}"]
            last_id = first[-1]["id"]
            epoch = acks[0]["data"]["epoch"]
            assert last_id.startswith(f"stream:{stream}={epoch}:2,tenant:{tenant}=")
        missed = [job_event(stream, tenant) for _ in range(2)]
        for event in missed:
            await broker.publish_envelope(event)
        # Wait until the notifier has recorded both (a WebSocket observer sees them live).
        async with notifier.connect(tenant) as observer:
            await subscribe(observer, f"stream:{stream}", since=2)
            assert [(await recv(observer))["seq"] for _ in missed] == [3, 4]
        async with client.stream(
            "GET", url, params={"rooms": rooms, "token": bearer}, headers={"Last-Event-ID": last_id}
        ) as response:
            events = sse_events(response)
            got = await take(events, 6)  # per room: its ack, then its 2 missed frames
            acks = [g["data"] for g in got if "op" in g["data"]]
            assert [(a["op"], a["recovered"]) for a in acks] == [("subscribed", True)] * 2
            frames = [g for g in got if "op" not in g["data"]]
            replayed = [(g["data"]["room"], g["data"]["entity_id"]) for g in frames]
            ids = [str(e.entity_id) for e in missed]
            assert sorted(replayed) == sorted(
                (room, i) for room in (f"stream:{stream}", f"tenant:{tenant}") for i in ids
            )
            assert got[-1]["id"].startswith(f"stream:{stream}={epoch}:4,")


async def test_sse_sends_heartbeat_comments(prefix: str) -> None:
    tenant = uuid.uuid4()
    async with serve_notifier(prefix, heartbeat_seconds=0.2, idle_timeout_seconds=5) as notifier:
        url = f"http://127.0.0.1:{notifier.port}/sse"
        params = {"rooms": f"tenant:{tenant}", "token": notifier.token(tenant)}
        async with (
            httpx.AsyncClient(timeout=TIMEOUT) as client,
            client.stream("GET", url, params=params) as response,
        ):
            events = sse_events(response)
            assert (await anext(events))["data"]["op"] == "subscribed"
            assert await asyncio.wait_for(anext(events), TIMEOUT) == {"comment": "keep-alive"}


async def test_sse_refusals(notifier: Notifier, broker: Broker) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    theirs = await new_stream(broker, other)
    url = f"http://127.0.0.1:{notifier.port}/sse"
    bearer = notifier.token(tenant)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        no_token = await client.get(url, params={"rooms": f"tenant:{tenant}"})
        assert no_token.status_code == 401
        assert no_token.headers["content-type"] == "application/problem+json"
        for room in (f"tenant:{other}", f"stream:{theirs}"):
            refused = await client.get(url, params={"rooms": room, "token": bearer})
            assert (refused.status_code, refused.json()["detail"]) == (404, "room not available")
        bad = await client.get(url, params={"rooms": "camera:1", "token": bearer})
        assert bad.status_code == 400
        resume = await client.get(
            url,
            params={"rooms": f"tenant:{tenant}", "token": bearer},
            headers={"Last-Event-ID": "garbage"},
        )
        assert resume.status_code == 400
        evil = await client.get(
            url,
            params={"rooms": f"tenant:{tenant}", "token": bearer},
            headers={"Origin": "http://evil.example"},
        )
        assert evil.status_code == 403
