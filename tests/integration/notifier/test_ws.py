"""The notifier served by uvicorn on loopback, with real Redis and RabbitMQ, driven by the
``websockets`` client: auth, rooms, tenant isolation, replay, back-pressure, limits."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
import uvicorn
from lookout_notifier.entrypoints.http import create_app, server_config
from lookout_notifier.entrypoints.ws import NotifierWebSocket
from lookout_notifier.settings import NotifierSettings
from lookout_shared.broker import Broker
from lookout_shared.contracts import CountsChanged, SnapshotJobState, StreamDeleted, StreamState
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import Role, TokenCodec
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TIMEOUT = 10.0


class Notifier:
    def __init__(self, port: int, settings: NotifierSettings, server: uvicorn.Server) -> None:
        self.port, self.settings, self.server = port, settings, server
        self.codec = TokenCodec(
            settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def token(self, tenant: uuid.UUID | None, role: Role = "viewer") -> str:
        return self.codec.issue(uuid.uuid4(), tenant, role, timedelta(minutes=5))

    def connect(self, tenant: uuid.UUID | None, **options: Any) -> Any:
        return connect(f"{self.url}?token={self.token(tenant)}", **options)


@asynccontextmanager
async def serve_notifier(prefix: str, **overrides: Any) -> AsyncIterator[Notifier]:
    # The WebSocket clients here share the served notifier's event loop, so the webhook
    # consumer's work on the same events would count as client slowness in the
    # back-pressure tests; webhook tests turn it on (test_webhooks.py).
    overrides.setdefault("webhooks_enabled", False)
    settings = NotifierSettings(redis_prefix=prefix, **overrides)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        server_config(create_app(settings), settings, port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield Notifier(port, settings, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()


@pytest.fixture
async def notifier(prefix: str) -> AsyncIterator[Notifier]:
    async with serve_notifier(prefix) as served:
        yield served


def job_event(stream: uuid.UUID, tenant: uuid.UUID, error: str | None = None) -> Envelope:
    job = uuid.uuid4()
    return make_envelope(
        "snapshot_job.succeeded",
        SnapshotJobState(stream_id=stream, status="succeeded", error=error),
        producer="tests",
        tenant_id=tenant,
        entity_id=job,
        entity_version=1,
    )


def stream_event(kind: str, stream: uuid.UUID, tenant: uuid.UUID) -> Envelope:
    payload = (
        StreamDeleted()
        if kind == "stream.deleted"
        else StreamState(name="cam", kind="rtsp", status="pending", enabled=True)
    )
    return make_envelope(
        kind, payload, producer="tests", tenant_id=tenant, entity_id=stream, entity_version=1
    )


async def new_stream(broker: Broker, tenant: uuid.UUID) -> uuid.UUID:
    """A stream created the way the api does it: its stream.created event (seq 1 of its
    room). A subscription right after it waits for the event to arrive."""
    stream = uuid.uuid4()
    await broker.publish_envelope(stream_event("stream.created", stream, tenant))
    return stream


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def subscribe(
    ws: ClientConnection, room: str, since: int | None = None, epoch: str | None = None
) -> dict[str, Any]:
    resume = {"since": since, "epoch": epoch}
    await send(ws, op="subscribe", room=room, **{k: v for k, v in resume.items() if v is not None})
    return await recv(ws)


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return caught.value.rcvd.code if caught.value.rcvd else None


# Authentication --------------------------------------------------------------------------


async def test_token_via_header_subprotocol_and_query(notifier: Notifier) -> None:
    token = notifier.token(uuid.uuid4())
    async with connect(notifier.url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}
    async with connect(notifier.url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}
    async with connect(f"{notifier.url}?token={token}") as ws:
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}


@pytest.mark.parametrize("query", ["", "?token=not-a-jwt"])
async def test_missing_or_bad_token_is_closed_with_1008(notifier: Notifier, query: str) -> None:
    async with connect(notifier.url + query) as ws:
        assert await closed_code(ws) == 1008


async def test_token_for_another_audience_is_refused(notifier: Notifier) -> None:
    secret = notifier.settings.jwt_secret.get_secret_value()
    forged = TokenCodec(secret, notifier.settings.jwt_issuer, "elsewhere").issue(
        uuid.uuid4(), uuid.uuid4(), "admin", timedelta(minutes=5)
    )
    async with connect(f"{notifier.url}?token={forged}") as ws:
        assert await closed_code(ws) == 1008


async def test_foreign_origin_is_refused_and_listed_origin_accepted(notifier: Notifier) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with notifier.connect(uuid.uuid4(), origin="http://evil.example"):
            pass
    assert caught.value.response.status_code == 403
    async with notifier.connect(uuid.uuid4(), origin="http://localhost:8000") as ws:
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}


# Frames ----------------------------------------------------------------------------------


async def test_bad_frames_get_error_frames_and_the_connection_stays(notifier: Notifier) -> None:
    async with notifier.connect(uuid.uuid4()) as ws:
        await ws.send("not json")
        assert (await recv(ws))["code"] == "bad_frame"
        await send(ws, op="dance")
        assert (await recv(ws))["code"] == "unknown_op"
        await send(ws, op="subscribe", room="camera:1")
        assert (await recv(ws))["code"] == "bad_room"
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}


async def test_oversized_frame_is_closed_with_1009(notifier: Notifier) -> None:
    async with notifier.connect(uuid.uuid4()) as ws:
        await ws.send(json.dumps({"op": "ping", "pad": "x" * notifier.settings.max_frame_bytes}))
        assert await closed_code(ws) == 1009


# Rooms and tenants -----------------------------------------------------------------------


async def test_event_reaches_its_tenant_and_never_another(
    notifier: Notifier, broker: Broker
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    refused = {"op": "error", "code": "forbidden_room", "detail": "room not available"}
    async with notifier.connect(tenant) as mine, notifier.connect(other) as theirs:
        # Subscribed at once after the creation: the subscription waits for its event.
        ack = await subscribe(mine, room)
        assert ack == {"op": "subscribed", "room": room, "seq": 1, "epoch": ANY}
        assert (await subscribe(mine, f"tenant:{tenant}"))["op"] == "subscribed"
        assert await subscribe(theirs, room) == {**refused, "room": room}
        assert await subscribe(theirs, f"tenant:{tenant}") == {
            **refused,
            "room": f"tenant:{tenant}",
        }
        assert (await subscribe(theirs, f"tenant:{other}"))["op"] == "subscribed"
        event = job_event(stream, tenant)
        await broker.publish_envelope(event)

        frame = await recv(mine)
        assert frame == {
            "room": room,
            "seq": 2,
            "epoch": ack["epoch"],
            "type": "snapshot_job.succeeded",
            "entity_id": str(event.entity_id),
            "data": event.data,
        }
        assert (await recv(mine))["room"] == f"tenant:{tenant}"
        # Fan-out to both connections happened before `mine` got the frame, so had `theirs`
        # been sent anything it would come before this pong.
        await send(theirs, op="ping")
        assert await recv(theirs) == {"op": "pong"}
        # The same refusal, no hint that it exists, for a job of theirs and for ids nobody
        # has ever named (after the short wait for an event in flight).
        for name in (f"jobs:{event.entity_id}", f"stream:{uuid.uuid4()}", f"user:{uuid.uuid4()}"):
            assert await subscribe(theirs, name) == {**refused, "room": name}


async def test_deleted_stream_is_refused(notifier: Notifier, broker: Broker) -> None:
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    async with notifier.connect(tenant) as ws:
        assert (await subscribe(ws, room))["op"] == "subscribed"
        await broker.publish_envelope(stream_event("stream.deleted", stream, tenant))
        frame = await recv(ws)
        if frame["type"] == "stream.created":  # the subscription waited for it: it comes first
            frame = await recv(ws)
        assert frame["type"] == "stream.deleted"
        assert (await subscribe(ws, room))["code"] == "forbidden_room"


async def test_counts_changed_reaches_the_tenant_room_only(
    notifier: Notifier, broker: Broker
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    async with notifier.connect(tenant) as mine, notifier.connect(other) as theirs:
        await subscribe(mine, f"tenant:{tenant}")
        await subscribe(theirs, f"tenant:{other}")
        counts = make_envelope(
            "counts.changed",
            CountsChanged(scope=str(tenant), changes={"streams.total": 3}),
            producer="tests",
            tenant_id=tenant,
            entity_id=tenant,
            entity_version=1,
        )
        await broker.publish_envelope(counts)
        frame = await recv(mine)
        assert (frame["room"], frame["type"], frame["data"]) == (
            f"tenant:{tenant}",
            "counts.changed",
            counts.data,
        )
        await send(theirs, op="ping")
        assert await recv(theirs) == {"op": "pong"}


async def test_unsubscribe_stops_delivery(notifier: Notifier, broker: Broker) -> None:
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    async with notifier.connect(tenant) as ws:
        await subscribe(ws, room)
        await send(ws, op="unsubscribe", room=room)
        assert await recv(ws) == {"op": "unsubscribed", "room": room}
        async with notifier.connect(tenant) as observer:
            await subscribe(observer, room)
            await broker.publish_envelope(job_event(stream, tenant))
            assert (await recv(observer))["seq"] == 2
        await send(ws, op="ping")
        assert await recv(ws) == {"op": "pong"}


async def test_a_room_this_instance_numbers_gets_its_frames_ahead_of_the_numbering(
    notifier: Notifier, broker: Broker
) -> None:
    """One instance numbers every event of the room, so each frame after the first goes out
    before Redis answers and Redis confirms the seq it was sent with (handlers/events.py)."""
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    confirmed = _early("confirmed")
    taken_back = _early("taken_back")
    async with notifier.connect(tenant) as ws:
        await subscribe(ws, room)
        events = [job_event(stream, tenant) for _ in range(5)]
        for event in events:
            await broker.publish_envelope(event)
        got = [await recv(ws) for _ in events]
    assert [(f["seq"], f["entity_id"]) for f in got] == [
        (seq, str(e.entity_id)) for seq, e in enumerate(events, start=2)
    ]
    assert _early("confirmed") - confirmed >= len(events)
    assert _early("taken_back") == taken_back


def _early(outcome: str) -> float:
    return REGISTRY.get_sample_value("lookout_ws_early_frames_total", {"outcome": outcome}) or 0.0


# Replay ----------------------------------------------------------------------------------


async def publish_and_observe(
    broker: Broker, observer: ClientConnection, stream: uuid.UUID, tenant: uuid.UUID, n: int
) -> list[int]:
    for _ in range(n):
        await broker.publish_envelope(job_event(stream, tenant))
    return [(await recv(observer))["seq"] for _ in range(n)]


async def test_since_replays_exactly_the_missed_frames(notifier: Notifier, broker: Broker) -> None:
    await check_replay_after_reconnect(notifier, notifier, broker)


async def test_recovery_after_reconnecting_to_another_instance(prefix: str, broker: Broker) -> None:
    async with serve_notifier(prefix) as first, serve_notifier(prefix) as second:
        await check_replay_after_reconnect(first, second, broker)


async def check_replay_after_reconnect(first: Notifier, second: Notifier, broker: Broker) -> None:
    """A client of ``first`` leaves, misses three frames, and reconnects to ``second``."""
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    async with first.connect(tenant) as observer:
        await subscribe(observer, room)  # seq 1 is the stream's creation
        async with first.connect(tenant) as client:
            epoch = (await subscribe(client, room))["epoch"]
            assert await publish_and_observe(broker, observer, stream, tenant, 2) == [2, 3]
            assert [(await recv(client))["seq"] for _ in range(2)] == [2, 3]
        # Disconnected: three frames are missed.
        assert await publish_and_observe(broker, observer, stream, tenant, 3) == [4, 5, 6]
        async with second.connect(tenant) as client:
            ack = await subscribe(client, room, since=3, epoch=epoch)
            assert ack == {
                "op": "subscribed",
                "room": room,
                "seq": 6,
                "epoch": epoch,
                "recovered": True,
            }
            assert [(await recv(client))["seq"] for _ in range(3)] == [4, 5, 6]
            await publish_and_observe(broker, observer, stream, tenant, 1)
            assert (await recv(client))["seq"] == 7  # then live, no gap, no duplicate
            await send(client, op="ping")
            assert await recv(client) == {"op": "pong"}


async def test_trimmed_history_answers_recovered_false(prefix: str, broker: Broker) -> None:
    tenant = uuid.uuid4()
    async with (
        serve_notifier(prefix, history_size=2) as notifier,
        notifier.connect(tenant) as observer,
    ):
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        await subscribe(observer, room)
        await publish_and_observe(broker, observer, stream, tenant, 5)
        async with notifier.connect(tenant) as client:
            assert await subscribe(client, room, since=2) == {
                "op": "subscribed",
                "room": room,
                "seq": 6,
                "epoch": ANY,
                "recovered": False,
            }
            assert (await subscribe(client, room, since=4))["recovered"] is True
            assert [(await recv(client))["seq"] for _ in range(2)] == [5, 6]


# Back-pressure ---------------------------------------------------------------------------


async def seqs_of(ws: ClientConnection, n: int) -> list[int]:
    return [(await recv(ws))["seq"] for _ in range(n)]


async def test_client_that_stops_reading_is_closed_with_1013(prefix: str, broker: Broker) -> None:
    tenant, count = uuid.uuid4(), 200
    big = "x" * 65536  # large frames fill the socket buffers with few events (uncompressed)
    # A send queue of 8 frames and one event in flight: the broker may hand a
    # whole prefetch's worth of events over at once and a reading client gets them in a burst.
    small = {"send_queue_size": 8, "event_prefetch": 1, "history_size": 5}
    async with serve_notifier(prefix, **small) as notifier:
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        # A fixed, small receive buffer (no autotuning to 32 MiB) and a one-message client
        # queue: once it stops reading, the server's writes soon stop draining.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", notifier.port))
        slow_client = notifier.connect(tenant, max_queue=1, sock=sock)
        async with slow_client as slow, notifier.connect(tenant) as fast:
            await subscribe(slow, room)
            await subscribe(fast, room)
            # The fast client reads all along, as a client that keeps up does.
            reading = asyncio.create_task(seqs_of(fast, count))
            for start in range(0, count, 50):
                await asyncio.gather(
                    *(
                        broker.publish_envelope(job_event(stream, tenant, big))
                        for _ in range(start, start + 50)
                    )
                )
            seqs = await reading
            assert seqs == list(range(2, count + 2))
            # The slow client now reads what was in flight, then the close frame.
            assert await closed_code(slow) == 1013


async def test_client_that_never_reads_is_dropped_with_1013_long_before_the_heartbeat(
    prefix: str, broker: Broker
) -> None:
    """The kernel's and the transport's buffers absorb megabytes before a send blocks: the
    bound counts what the transport holds, and the close neither waits for the client to
    drain it nor leaves the socket open when it never does."""
    tenant, count = uuid.uuid4(), 200
    big = "x" * 65536
    heartbeat = {"heartbeat_seconds": 60, "idle_timeout_seconds": 180}
    # One event in flight: a burst of a prefetch's worth of 64 KiB frames would exceed the
    # reading client's 256 KiB too, since it reads on this same event loop.
    bounds = {"max_unsent_bytes": 262144, "event_prefetch": 1}
    async with serve_notifier(prefix, **bounds, **heartbeat) as notifier:
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", notifier.port))
        # No pings of its own and a one-message queue: it reads nothing after its ack.
        stalled = notifier.connect(tenant, sock=sock, max_queue=1, ping_interval=None)
        async with stalled as slow, notifier.connect(tenant) as fast:
            await subscribe(slow, room)
            await subscribe(fast, room)
            # uvicorn types its connections as its own protocols; /ws ones are the notifier's.
            open_sockets: set[Any] = notifier.server.server_state.connections
            sockets = [p for p in open_sockets if isinstance(p, NotifierWebSocket)]
            (server_side,) = [
                p for p in sockets if p.transport.get_extra_info("peername") == sock.getsockname()
            ]
            started = asyncio.get_running_loop().time()
            # The fast client reads all along, as a client that keeps up does.
            reading = asyncio.create_task(seqs_of(fast, count))
            for start in range(0, count, 50):
                await asyncio.gather(
                    *(
                        broker.publish_envelope(job_event(stream, tenant, big))
                        for _ in range(start, start + 50)
                    )
                )
            seqs = await reading
            assert seqs == list(range(2, count + 2))  # the others keep receiving
            deadline = started + notifier.settings.heartbeat_seconds / 2
            while not server_side.disconnected:
                assert asyncio.get_running_loop().time() < deadline, "stalled client still open"
                await asyncio.sleep(0.1)
            assert server_side.close_sent == 1013


# Operations ------------------------------------------------------------------------------


async def test_health_readiness_and_metrics(notifier: Notifier) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{notifier.port}") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"rabbitmq": "ok", "redis": "ok"}
        assert "lookout_ws_connections" in (await client.get("/metrics")).text
