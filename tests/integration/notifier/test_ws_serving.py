"""How /ws is served, against real servers: Redis work per event (not per subscriber), the
heartbeat sweep, resident memory per idle connection, and replay across a restart."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import socket
import struct
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from lookout_notifier.settings import NotifierSettings
from lookout_shared.broker import Broker
from lookout_shared.tokens import TokenCodec
from redis.asyncio import Redis

from .test_ws import (
    TIMEOUT,
    job_event,
    new_stream,
    recv,
    send,
    serve_notifier,
    subscribe,
)

ROOT = Path(__file__).resolve().parents[3]
# Commands a client library sends on its own (new pooled connections, health) and the
# INFO this test reads with: not the notifier's work on events.
HOUSEKEEPING = {"info", "hello", "client|setinfo", "client|setname", "select", "auth", "ping"}


async def command_calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in HOUSEKEEPING
    }


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


async def test_redis_work_per_event_does_not_grow_with_subscribers(
    prefix: str, broker: Broker, redis: Redis
) -> None:
    """One script call numbers and keeps an event in all its rooms; fan-out to any number
    of local subscribers adds no Redis command (no per-frame or per-connection trip)."""
    tenant, events = uuid.uuid4(), 5
    # Leases far off: no slot renewal falls inside the measured windows.
    async with serve_notifier(prefix, connection_lease_seconds=600) as notifier:
        costs = []
        for subscribers in (1, 40):
            stream = await new_stream(broker, tenant)
            room = f"stream:{stream}"
            clients = [notifier.connect(tenant) for _ in range(subscribers)]
            opened = [await c.__aenter__() for c in clients]
            try:
                for client in opened:
                    await subscribe(client, room)
                before = await command_calls(redis)
                for _ in range(events):
                    await broker.publish_envelope(job_event(stream, tenant))
                for client in opened:
                    assert [(await recv(client))["seq"] for _ in range(events)] == [2, 3, 4, 5, 6]
                costs.append(delta(await command_calls(redis), before))
            finally:
                for c in clients:
                    await c.__aexit__(None, None, None)
        one, many = costs
        assert one.get("evalsha") == events  # one round trip per event
        assert many == one, f"Redis work grew with subscribers: {one} vs {many}"


async def test_silent_peer_is_closed_by_the_heartbeat_and_a_live_one_stays(prefix: str) -> None:
    tenant = uuid.uuid4()
    beat = {"heartbeat_seconds": 0.2, "idle_timeout_seconds": 0.6}
    async with serve_notifier(prefix, **beat) as notifier, notifier.connect(tenant) as live:
        reader, writer = await raw_connect(notifier.port, notifier.token(tenant))
        try:
            # It reads, but never answers a ping: pings, then a close 1011, then EOF.
            data = await asyncio.wait_for(reader.read(), TIMEOUT)
        finally:
            writer.close()
        opcodes = list(server_frames(data))
        assert (0x9, b"") in opcodes  # pinged first
        assert opcodes[-1][0] == 0x8
        assert struct.unpack("!H", opcodes[-1][1][:2])[0] == 1011
        # The websockets client answers pings by itself: still open, well past the timeout.
        await send(live, op="ping")
        assert await recv(live) == {"op": "pong"}


async def test_idle_connection_costs_a_few_kib_of_resident_memory(
    prefix: str, broker: Broker
) -> None:
    """The notifier as it runs (its own process, JSON logs, tracing set up): resident
    memory per idle subscribed connection, over 1,000 of them. A connection that costs
    an ASGI task, a queue and a sender task each is several times over the bound."""
    n, bound_kib = 1000, 16
    settings = NotifierSettings(redis_prefix=prefix)
    codec = TokenCodec(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    tenant = uuid.uuid4()
    async with notifier_process(prefix) as (port, pid):
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        # One connection first, so what the first one sets up is not counted.
        warm = await raw_subscribe(port, codec, tenant, room)
        before = rss_kib(pid)
        gate = asyncio.Semaphore(50)

        async def one() -> asyncio.StreamWriter:
            async with gate:
                return await raw_subscribe(port, codec, tenant, room)

        writers = await asyncio.gather(*(one() for _ in range(n)))
        await asyncio.sleep(1)
        per_connection = (rss_kib(pid) - before) / n
        for writer in [warm, *writers]:
            writer.close()
        assert per_connection <= bound_kib, f"{per_connection:.1f} KiB per idle connection"


async def test_a_full_collection_does_not_walk_what_start_up_built(prefix: str) -> None:
    """A full garbage collection walks every tracked object and stops the event loop
    meanwhile: ~0.1 s for a started notifier's ~10^5 objects on a busy machine, a stall of
    every fan-out. Start-up's objects are frozen out of it."""
    async with serve_notifier(prefix):
        frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
        assert frozen > 50_000
        assert walked < frozen / 4, (walked, frozen)


async def test_replay_across_a_restart_of_the_only_instance(prefix: str, broker: Broker) -> None:
    """What a restarted instance knows comes from Redis: a client resuming on it gets the
    frames it missed (numbered by the new process) in order, then live ones."""
    tenant = uuid.uuid4()
    async with serve_notifier(prefix) as first:
        stream = await new_stream(broker, tenant)
        room = f"stream:{stream}"
        async with first.connect(tenant) as client:
            ack = await subscribe(client, room)
            epoch, seen = ack["epoch"], ack["seq"]
    async with serve_notifier(prefix) as second, second.connect(tenant) as observer:
        await subscribe(observer, room)
        for _ in range(2):
            await broker.publish_envelope(job_event(stream, tenant))
        assert [(await recv(observer))["seq"] for _ in range(2)] == [seen + 1, seen + 2]
        async with second.connect(tenant) as client:
            resumed = await subscribe(client, room, since=seen, epoch=epoch)
            assert (resumed["recovered"], resumed["epoch"]) == (True, epoch)
            assert [(await recv(client))["seq"] for _ in range(2)] == [seen + 1, seen + 2]
            await broker.publish_envelope(job_event(stream, tenant))
            assert (await recv(client))["seq"] == seen + 3


# Helpers ---------------------------------------------------------------------------------


async def raw_connect(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake by hand: a client that does nothing it is not told to."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def raw_subscribe(
    port: int, codec: TokenCodec, tenant: uuid.UUID, room: str
) -> asyncio.StreamWriter:
    token = codec.issue(uuid.uuid4(), tenant, "viewer", timedelta(minutes=5))
    reader, writer = await raw_connect(port, token)
    payload = f'{{"op":"subscribe","room":"{room}"}}'.encode()
    # Masked with a zero key, which leaves the payload as it is.
    writer.write(struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
    head = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    ack = await reader.readexactly(head[1] & 0x7F)
    assert b'"subscribed"' in ack, ack
    return writer


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked frame with a short payload."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, size = data[at] & 0x0F, data[at + 1] & 0x7F
        frames.append((opcode, data[at + 2 : at + 2 + size]))
        at += 2 + size
    return frames


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def notifier_process(prefix: str) -> AsyncIterator[tuple[int, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "LOOKOUT_NOTIFIER_PORT": str(port),
        "LOOKOUT_REDIS_PREFIX": prefix,
        "LOOKOUT_LOG_LEVEL": "WARNING",
        "LOOKOUT_WEBHOOKS_ENABLED": "false",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lookout_notifier.main", env=env, cwd=ROOT
    )
    try:
        for _ in range(300):
            assert process.returncode is None, f"notifier exited with {process.returncode}"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), TIMEOUT)
