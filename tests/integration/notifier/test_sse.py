"""SSE against real servers: delivery and resume from Last-Event-ID, heartbeats, refusals."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from lookout_shared.broker import Broker

from .test_ws import (
    TIMEOUT,
    Notifier,
    job_event,
    new_stream,
    recv,
    serve_notifier,
    subscribe,
)


@pytest.fixture
async def notifier(prefix: str) -> AsyncIterator[Notifier]:
    async with serve_notifier(prefix) as served:
        yield served


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
