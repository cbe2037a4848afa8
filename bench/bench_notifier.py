"""Notifier fan-out against python-socketio rooms doing the same fan-out, in the same run.

Both servers run as their own OS process (uvicorn, websockets-sansio, one worker) fed by
their own queue on ``lookout.events``. Clients are a minimal asyncio WebSocket protocol (no
frame parsing beyond the header), so the client side costs little and the same for both.

Rows: publish → frame latency with 1,000 subscribed clients (10 per stream), events
published straight to ``lookout.events``; REST write → frame latency with 1,000 subscribed
clients, all in one stream room and 10 per stream, where the api (``lookout-api``, its own
process, with its outbox relay) is in the path: each write is a ``PATCH`` of a stream's
name, committed with its ``stream.updated`` event in the outbox, relayed to RabbitMQ and
fanned out; deliveries per second to 5,000 clients in one room; resident memory per idle
subscribed connection at 10,000 connections. ``BENCH_SCALE=small``: 100 / 500 / 1,000.

Run: ``python -m bench.bench_notifier`` with the stack's ``LOOKOUT_*`` variables set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import resource
import secrets
import socket
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from lookout_notifier.settings import NotifierSettings
from lookout_shared.broker import Broker
from lookout_shared.contracts import SnapshotJobState, StreamState
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import TokenCodec

from bench.report import Row, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "").lower() == "small"
LATENCY_CLIENTS = 100 if SMALL else 1000
WATCHERS_PER_STREAM = 10
LATENCY_EVENTS = 100 if SMALL else 300
LATENCY_RATE = 100.0  # events per second
ROOM_CLIENTS = 500 if SMALL else 5000
ROOM_EVENTS = 20 if SMALL else 40
IDLE_CLIENTS = 1000 if SMALL else 10000
CONNECT_CONCURRENCY = 64
REST_WRITES = 50 if SMALL else 150
REST_RATE = 5.0  # writes per second: one write's fan-out is done before the next starts
API_PASSWORD = secrets.token_urlsafe(16)  # of the superuser and operator this run creates
ROOT = Path(__file__).resolve().parents[1]


# A minimal WebSocket client ------------------------------------------------------------------


class WsClient(asyncio.Protocol):
    """Handshake, then text frames to ``on_text`` (or a queue); pings answered."""

    def __init__(self, path: str, ready: asyncio.Future[None]) -> None:
        self._path, self._ready = path, ready
        self._buf = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.on_text: Callable[[bytes], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self._path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._upgraded:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status, self._buf = self._buf[:end], self._buf[end + 4 :]
            if b" 101 " not in status.split(b"\r\n", 1)[0]:
                self._ready.set_exception(ConnectionError(status[:80].decode(errors="replace")))
                return
            self._upgraded = True
            self._ready.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf, pos = self._buf, 0
        while len(buf) - pos >= 2:
            opcode, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + size:
                break
            payload = buf[pos + head : pos + head + size]
            pos += head + size
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x1:
                if payload == b"2":  # engine.io ping
                    self._send(0x1, b"3")
                elif self.on_text is not None:
                    self.on_text(payload)
                else:
                    self.inbox.put_nowait(payload)
        self._buf = buf[pos:]

    def _send(self, opcode: int, payload: bytes) -> None:
        # Masked, as a client must; a zero mask leaves the payload as it is.
        size = len(payload)
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size) if size < 126 else None
        if head is None:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + b"\0\0\0\0" + payload)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ready.done():
            self._ready.set_exception(ConnectionError("closed during handshake"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_client(port: int, path: str) -> WsClient:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    _, proto = await loop.create_connection(lambda: WsClient(path, ready), "127.0.0.1", port)
    await asyncio.wait_for(ready, 30)
    return proto


# The two servers under test --------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: asyncio.subprocess.Process
    codec: TokenCodec | None = None
    tenant: uuid.UUID = field(default_factory=uuid.uuid4)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    async def join(self, room: str) -> WsClient:
        """A connected client subscribed to ``room`` (its ack received)."""
        if self.codec is not None:
            token = self.codec.issue(uuid.uuid4(), self.tenant, "viewer", timedelta(hours=1))
            client = await open_client(self.port, f"/ws?token={token}")
            client.send_text(f'{{"op":"subscribe","room":"{room}"}}')
            ack = await asyncio.wait_for(client.inbox.get(), 30)
            if b'"subscribed"' not in ack:
                raise RuntimeError(f"not subscribed: {ack[:200]!r}")
            return client
        client = await open_client(self.port, "/socket.io/?EIO=4&transport=websocket")
        await asyncio.wait_for(client.inbox.get(), 30)  # engine.io open
        client.send_text("40")
        await asyncio.wait_for(client.inbox.get(), 30)  # namespace connected
        client.send_text(f'42["join","{room}"]')
        ack = await asyncio.wait_for(client.inbox.get(), 30)
        if b'"joined"' not in ack:
            raise RuntimeError(f"not joined: {ack[:200]!r}")
        return client

    async def join_many(self, rooms: list[str]) -> list[WsClient]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(room: str) -> WsClient:
            async with gate:
                return await self.join(room)

        return list(await asyncio.gather(*(one(room) for room in rooms)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if process.returncode is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await asyncio.sleep(0.5)  # its consumer is declared in the lifespan, before listen
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


@contextlib.asynccontextmanager
async def serve(name: str) -> AsyncIterator[Server]:
    port = free_port()
    env = {**os.environ, "LOOKOUT_LOG_LEVEL": "WARNING"}
    codec = None
    if name == "lookout-notifier":
        settings = NotifierSettings()
        codec = TokenCodec(
            settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
        )
        env |= {
            "LOOKOUT_NOTIFIER_PORT": str(port),
            "LOOKOUT_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
        }
        command = [sys.executable, "-m", "lookout_notifier.main"]
    else:
        command = [sys.executable, "-m", "bench.notifier_socketio_peer", str(port)]
    process = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT)
    try:
        await wait_listening(port, process)
        yield Server(name, port, process, codec)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


# The api, for the REST write rows -----------------------------------------------------------


@dataclass
class Api:
    """``lookout-api`` as its own process, with an operator of a tenant of this run."""

    client: httpx.AsyncClient
    tenant: uuid.UUID
    email: str

    async def login(self) -> None:
        # A fresh access token for each scenario: they outlive one token's 15 minutes.
        self.client.headers["Authorization"] = await _token(self.client, self.email)

    async def create_streams(self, n: int) -> list[uuid.UUID]:
        items = [{"name": f"cam-{i}", "url": f"rtsp://cam.example.com/{i}"} for i in range(n)]
        r = await self.client.post("/api/v1/streams:bulk", json={"items": items})
        r.raise_for_status()
        return [uuid.UUID(item["stream"]["id"]) for item in r.json()["items"]]

    async def rename(self, stream: uuid.UUID, name: str) -> None:
        r = await self.client.patch(f"/api/v1/streams/{stream}", json={"name": name})
        r.raise_for_status()


async def _token(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": API_PASSWORD})
    r.raise_for_status()
    return f"Bearer {r.json()['access_token']}"


@contextlib.asynccontextmanager
async def run_api() -> AsyncIterator[Api]:
    port = free_port()
    env = {
        **os.environ,
        "LOOKOUT_API_PORT": str(port),
        "LOOKOUT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOOKOUT_LOG_LEVEL": "WARNING",
        "LOOKOUT_SUPERUSER_PASSWORD": API_PASSWORD,
    }
    script = str(Path(sys.executable).parent / "lookout-api")
    root = f"root-{uuid.uuid4().hex[:8]}@example.com"
    created = await asyncio.create_subprocess_exec(
        script, "create-superuser", root, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    if await created.wait() != 0:
        raise RuntimeError("lookout-api create-superuser failed")
    process = await asyncio.create_subprocess_exec(script, env=env, cwd=ROOT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await _api_ready(client, process)
            superuser = {"Authorization": await _token(client, root)}
            r = await client.post(
                "/api/v1/tenants", json={"name": f"bench-{uuid.uuid4().hex[:8]}"}, headers=superuser
            )
            r.raise_for_status()
            tenant = uuid.UUID(r.json()["id"])
            email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
            user = {
                "email": email,
                "password": API_PASSWORD,
                "role": "operator",
                "tenant_id": str(tenant),
            }
            (await client.post("/api/v1/users", json=user, headers=superuser)).raise_for_status()
            yield Api(client, tenant, email)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _api_ready(client: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if process.returncode is not None:
            raise RuntimeError(f"lookout-api exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("lookout-api did not become ready")


# Scenarios ----------------------------------------------------------------------------------


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


async def rest_latency(server: Server, api: Api, per_room: int) -> list[float]:
    """PATCH a stream's name through the api; time from sending the request to each
    subscribed client's frame. ``per_room`` clients watch each stream."""
    await api.login()
    server.tenant = api.tenant  # the clients' tokens are for the api's tenant
    # Created once the server runs, so it sees every stream.created and knows the owners.
    streams = await api.create_streams(LATENCY_CLIENTS // per_room)
    rooms = [f"stream:{streams[i % len(streams)]}" for i in range(LATENCY_CLIENTS)]
    clients = await server.join_many(rooms)
    nonce = uuid.uuid4().hex[:4]
    marker = f"rest-{nonce}-".encode()  # names are rest-<nonce>-<6 digits>: 16 bytes

    def name_of(frame: bytes) -> bytes | None:
        at = frame.find(marker)
        return frame[at : at + 16] if at >= 0 else None

    arrivals = Arrivals(clients, name_of, REST_WRITES * per_room)
    await asyncio.sleep(1)
    for i in range(REST_WRITES):
        name = f"rest-{nonce}-{i:06d}"
        started = time.perf_counter()
        arrivals.sent[name.encode()] = started
        await api.rename(random.choice(streams), name)
        await asyncio.sleep(max(0.0, 1 / REST_RATE - (time.perf_counter() - started)))
    return await arrivals.collect(server)


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


@dataclass
class Figures:
    latency: list[float]
    rest_one_room: list[float]
    rest_per_stream: list[float]
    deliveries_per_s: float
    kib_per_connection: float


async def measure(name: str, broker: Broker, api: Api) -> Figures:
    # Each scenario gets a fresh server, so one scenario's leftovers never weigh on another.
    async with serve(name) as server:
        memory = await idle_memory(server, broker)
    async with serve(name) as server:
        samples = await latency(server, broker)
    async with serve(name) as server:
        one_room = await rest_latency(server, api, LATENCY_CLIENTS)
    async with serve(name) as server:
        per_stream = await rest_latency(server, api, WATCHERS_PER_STREAM)
    async with serve(name) as server:
        rate = await room_throughput(server, broker)
    print(f"{name}: done", flush=True)
    return Figures(samples, one_room, per_stream, rate, memory)


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CLIENTS * 2 + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def lat(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms"


async def main() -> None:
    raise_open_files()
    broker = Broker(os.environ["LOOKOUT_AMQP_URL"], producer="bench")
    await broker.connect()
    try:
        async with run_api() as api:
            ours = await measure("lookout-notifier", broker, api)
            peer = await measure("python-socketio", broker, api)
    finally:
        await broker.close()
    p99 = percentile(ours.latency, 99)
    rest_p99 = percentile(ours.rest_one_room, 99)
    rows = [
        Row(
            f"publish → frame latency, {LATENCY_CLIENTS:,} subscribed clients",
            lat(ours.latency),
            "python-socketio rooms",
            lat(peer.latency),
            percentile(peer.latency, 99) / p99,
        ),
        Row(
            f"end-to-end latency, REST write → frame received, {LATENCY_CLIENTS:,} subscribed"
            " clients all in one stream room (worst case)",
            lat(ours.rest_one_room),
            "python-socketio rooms",
            lat(peer.rest_one_room),
            percentile(peer.rest_one_room, 99) / rest_p99,
        ),
        Row(
            f"end-to-end latency, REST write → frame received, {LATENCY_CLIENTS:,} subscribed"
            f" clients, {WATCHERS_PER_STREAM} per stream",
            lat(ours.rest_per_stream),
            "python-socketio rooms",
            lat(peer.rest_per_stream),
            percentile(peer.rest_per_stream, 99) / percentile(ours.rest_per_stream, 99),
        ),
        Row(
            f"deliveries/s, {ROOM_CLIENTS:,} clients in one room",
            f"{ours.deliveries_per_s:,.0f}/s",
            "python-socketio rooms",
            f"{peer.deliveries_per_s:,.0f}/s",
            ours.deliveries_per_s / peer.deliveries_per_s,
        ),
        Row(
            f"RSS per idle connection, {IDLE_CLIENTS:,} connections",
            f"{ours.kib_per_connection:.1f} KiB",
            "python-socketio rooms",
            f"{peer.kib_per_connection:.1f} KiB",
            peer.kib_per_connection / ours.kib_per_connection,
        ),
    ]
    notes = (
        f"Scale: {'small' if SMALL else 'full'}. Publish → frame: {LATENCY_EVENTS} events at "
        f"{LATENCY_RATE:.0f}/s published straight to lookout.events, {WATCHERS_PER_STREAM} "
        f"clients per stream (measured p99 {p99 * 1000:.1f} ms). REST write → frame: "
        f"{REST_WRITES} PATCHes of a stream's name at {REST_RATE:.0f}/s sent to lookout-api "
        "(its own process), each committed with its stream.updated event in the outbox, "
        "published by the api's outbox relay (LISTEN/NOTIFY) and fanned out; timed from "
        "sending the request to each client's frame. The peer is fed the same way: same api, "
        "same writes, its own queue on lookout.events. The target (p99 < 50 ms at "
        f"{LATENCY_CLIENTS:,} subscribed clients) is measured with {WATCHERS_PER_STREAM} clients "
        f"per stream (measured p99 {percentile(ours.rest_per_stream, 99) * 1000:.1f} ms); all "
        f"of them in one room is the worst case, {LATENCY_CLIENTS:,} deliveries per write "
        f"(measured p99 {rest_p99 * 1000:.1f} ms). Ratios: >1 means the notifier is better. The "
        "notifier also verifies a JWT per connection, checks the stream's tenant, numbers "
        "every frame in Redis and keeps the history; the peer does none of that. Both are "
        "one uvicorn process (websockets-sansio, no compression); clients are a minimal "
        "asyncio WebSocket protocol in the bench process."
    )
    publish("notifier", "Notifier fan-out vs python-socketio", rows, notes)


if __name__ == "__main__":
    asyncio.run(main())
