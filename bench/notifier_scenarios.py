"""The scenarios of ``bench_notifier``, each against one fresh server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections.abc import Callable

from lookout_shared.broker import Broker
from lookout_shared.contracts import SnapshotJobState, StreamState
from lookout_shared.envelope import Envelope, make_envelope

from bench.notifier_api import Api
from bench.notifier_servers import Server, WsClient

SMALL = os.environ.get("BENCH_SCALE", "").lower() == "small"
LATENCY_CLIENTS = 100 if SMALL else 1000
WATCHERS_PER_STREAM = 10
LATENCY_EVENTS = 100 if SMALL else 300
LATENCY_RATE = 100.0  # events per second
ROOM_CLIENTS = 500 if SMALL else 5000
ROOM_EVENTS = 20 if SMALL else 40
IDLE_CLIENTS = 1000 if SMALL else 10000
REST_WRITES = 50 if SMALL else 150
ROUND_WRITES = REST_WRITES // 2  # the one-room row: two rounds per server
PAIRED_WRITES = 2 * REST_WRITES  # the per-stream row: both servers at once, the same writes
REST_RATE = 5.0  # writes per second: one write's fan-out is done before the next starts


def job_event(stream: uuid.UUID, tenant: uuid.UUID) -> Envelope:
    return make_envelope(
        "snapshot_job.succeeded",
        SnapshotJobState(stream_id=stream, status="succeeded"),
        producer="bench",
        tenant_id=tenant,
        entity_id=uuid.uuid4(),
        entity_version=1,
    )


async def create_streams(broker: Broker, tenant: uuid.UUID, n: int) -> list[uuid.UUID]:
    """Streams announced the way the api does (stream.created), so rooms may be joined."""
    streams = [uuid.uuid4() for _ in range(n)]
    state = StreamState(name="cam", kind="rtsp", status="pending", enabled=True)
    await asyncio.gather(
        *(
            broker.publish_envelope(
                make_envelope(
                    "stream.created",
                    state,
                    producer="bench",
                    tenant_id=tenant,
                    entity_id=s,
                    entity_version=1,
                )
            )
            for s in streams
        )
    )
    return streams


def entity_of(frame: bytes) -> bytes:
    at = frame.find(b'"entity_id":"') + 13
    return frame[at : at + 36]


def close_all(clients: list[WsClient]) -> None:
    for client in clients:
        client.close()


class Arrivals:
    """When each event was sent (by a key its frames carry), and the latency of every frame
    that arrives for one, until ``expected`` frames have arrived."""

    def __init__(
        self, clients: list[WsClient], key_of: Callable[[bytes], bytes | None], expected: int
    ) -> None:
        self.sent: dict[bytes, float] = {}
        self.samples: list[float] = []
        self._done = asyncio.Event()
        self._expected = expected
        self._clients = clients

        def received(frame: bytes) -> None:
            key = key_of(frame)
            t0 = self.sent.get(key) if key is not None else None
            if t0 is not None:
                self.samples.append(time.perf_counter() - t0)
                if len(self.samples) >= expected:
                    self._done.set()

        for client in clients:
            client.on_text = received

    async def collect(self, server: Server) -> list[float]:
        """Wait (up to 30 s) for the frames still on their way, then close the clients."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), 30)
        close_all(self._clients)
        if len(self.samples) < self._expected:
            missing = self._expected - len(self.samples)
            print(f"{server.name}: {missing} deliveries missing", flush=True)
        return self.samples


async def latency(server: Server, broker: Broker) -> list[float]:
    streams = await create_streams(broker, server.tenant, LATENCY_CLIENTS // WATCHERS_PER_STREAM)
    rooms = [f"stream:{streams[i % len(streams)]}" for i in range(LATENCY_CLIENTS)]
    clients = await server.join_many(rooms)
    arrivals = Arrivals(clients, entity_of, LATENCY_EVENTS * WATCHERS_PER_STREAM)
    await asyncio.sleep(1)
    for _ in range(LATENCY_EVENTS):
        event = job_event(random.choice(streams), server.tenant)
        arrivals.sent[str(event.entity_id).encode()] = time.perf_counter()
        await broker.publish_envelope(event)
        await asyncio.sleep(1 / LATENCY_RATE)
    return await arrivals.collect(server)


async def rest_latency(
    servers: list[Server], api: Api, per_room: int, writes: int
) -> list[list[float]]:
    """PATCH a stream's name through the api; time from sending the request to each
    subscribed client's frame, per server. ``per_room`` clients watch each stream on each
    server; with several servers, every one of them receives the same writes' events at the
    same moment (each its own queue on lookout.events)."""
    await api.login()
    for server in servers:
        server.tenant = api.tenant  # the clients' tokens are for the api's tenant
    # Created once the servers run, so they see every stream.created and know the owners.
    streams = await api.create_streams(LATENCY_CLIENTS // per_room)
    rooms = [f"stream:{streams[i % len(streams)]}" for i in range(LATENCY_CLIENTS)]
    nonce = uuid.uuid4().hex[:4]
    marker = f"rest-{nonce}-".encode()  # names are rest-<nonce>-<6 digits>: 16 bytes

    def name_of(frame: bytes) -> bytes | None:
        at = frame.find(marker)
        return frame[at : at + 16] if at >= 0 else None

    arrivals = [
        Arrivals(await server.join_many(rooms), name_of, writes * per_room) for server in servers
    ]
    await asyncio.sleep(1)
    for i in range(writes):
        name = f"rest-{nonce}-{i:06d}"
        started = time.perf_counter()
        for each in arrivals:
            each.sent[name.encode()] = started
        await api.rename(random.choice(streams), name)
        await asyncio.sleep(max(0.0, 1 / REST_RATE - (time.perf_counter() - started)))
    return [await each.collect(server) for each, server in zip(arrivals, servers, strict=True)]


async def room_throughput(server: Server, broker: Broker) -> float:
    (stream,) = await create_streams(broker, server.tenant, 1)
    clients = await server.join_many([f"stream:{stream}"] * ROOM_CLIENTS)
    counted = 0
    expected = ROOM_CLIENTS * ROOM_EVENTS
    done = asyncio.Event()

    def received(_: bytes) -> None:
        nonlocal counted
        counted += 1
        if counted >= expected:
            done.set()

    for client in clients:
        client.on_text = received
    await asyncio.sleep(1)
    started = time.perf_counter()
    await asyncio.gather(
        *(broker.publish_envelope(job_event(stream, server.tenant)) for _ in range(ROOM_EVENTS))
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    close_all(clients)
    if counted < expected:
        print(f"{server.name}: {expected - counted} deliveries missing", flush=True)
    return counted / elapsed


async def idle_memory(server: Server, broker: Broker) -> float:
    """KiB of resident memory per idle connection subscribed to one room."""
    (stream,) = await create_streams(broker, server.tenant, 1)
    await asyncio.sleep(1)
    before = server.rss_kib()
    clients = await server.join_many([f"stream:{stream}"] * IDLE_CLIENTS)
    await asyncio.sleep(2)
    after = server.rss_kib()
    close_all(clients)
    return (after - before) / IDLE_CLIENTS
