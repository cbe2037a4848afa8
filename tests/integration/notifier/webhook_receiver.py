"""A webhook receiver on loopback for the tests: uvicorn serving a tiny ASGI app that
keeps what it receives and answers with ``status`` (200, or 503 to play an outage), and
the signature check operators copy into their receivers (README)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

TIMEOUT = 20.0


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The documented check: a fresh timestamp and a matching v1 signature."""
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    signatures = headers["webhook-signature"].split()
    return any(hmac.compare_digest(f"v1={expected.hexdigest()}", s) for s in signatures)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    status: int = 200
    received: list[Received] = field(default_factory=list)
    refused: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.status == 200:
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.received.append(Received(headers, body))
        else:
            self.refused += 1
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
            await asyncio.sleep(0.05)


@asynccontextmanager
async def serve_receiver() -> AsyncIterator[Receiver]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    receiver = Receiver(sock.getsockname()[1])
    config = uvicorn.Config(receiver.app, log_level="warning", lifespan="off", interface="asgi3")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()
