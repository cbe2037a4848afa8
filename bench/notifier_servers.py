"""The two servers under test, each its own OS process, and the minimal WebSocket client the
bench drives them with (no frame parsing beyond the header, so the client side costs little
and the same for both).

- ``lookout-notifier`` as it ships (``python -m lookout_notifier.main``: its logging and
  tracing set up, ``/ws`` served on its port by its own protocol class under uvicorn);
- ``python-socketio`` rooms (``bench.notifier_socketio_peer``, uvicorn, websockets-sansio).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import socket
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from lookout_notifier.settings import NotifierSettings
from lookout_shared.tokens import TokenCodec

CONNECT_CONCURRENCY = 64
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


def raise_open_files(clients: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = clients * 2 + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
