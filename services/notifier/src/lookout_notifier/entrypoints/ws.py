"""``/ws``: the handshake (path, Origin, token), then client frames into handler calls.

Served by :class:`NotifierWebSocket`, the protocol class uvicorn hands WebSocket upgrades
to on the notifier's port (``entrypoints.http.server_config``): an open connection is this
one object, with no task of its own. Work that waits (the slot under the per-user cap, a subscription's
reads) runs in a short task that ends with it; reading from the client pauses meanwhile, so
its frames are handled one at a time, in order. Heartbeats are one sweep over every
connection (:meth:`Gateway.heartbeat_forever`), not a timer each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from lookout_shared.tokens import InvalidToken, Principal
from websockets.http11 import Request, Response

from lookout_notifier import handlers, metrics
from lookout_notifier.adapters.ws_wire import WireProtocol
from lookout_notifier.bootstrap import Notifier
from lookout_notifier.domain import frames
from lookout_notifier.domain.connection import POLICY_VIOLATION, Connection
from lookout_notifier.domain.policy import origin_allowed
from lookout_notifier.domain.ratelimit import TokenBucket
from lookout_notifier.entrypoints.auth import credentials
from lookout_notifier.entrypoints.session import end_session, open_session

log = logging.getLogger("uvicorn.error")  # where uvicorn logged WebSocket handshakes

PATH = "/ws"
# The ASGI lifespan state key under which the app leaves the gateway for the protocol.
GATEWAY = "lookout.ws_gateway"
INTERNAL_ERROR = 1011
# Connections pinged per turn of the event loop: a sweep over 10^4 of them would otherwise
# hold back fan-out for tens of milliseconds.
SWEEP_SLICE = 256


@dataclass
class Gateway:
    """What every ``/ws`` connection of this instance shares."""

    notifier: Notifier
    sockets: set[NotifierWebSocket] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
        return task

    async def heartbeat_forever(self) -> None:
        """Every heartbeat, ping each connection; one silent (no pong, no frame) for longer
        than the idle timeout is closed with 1011 (and dropped if it does not answer)."""
        settings = self.notifier.settings
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.heartbeat_seconds)
            silent_since = loop.time() - settings.idle_timeout_seconds
            for done, sock in enumerate(list(self.sockets), 1):
                if sock.last_seen < silent_since:
                    sock.end_with(INTERNAL_ERROR, "keepalive ping timeout")
                else:
                    sock.ping()
                if done % SWEEP_SLICE == 0:
                    await asyncio.sleep(0)  # let events through between slices


class NotifierWebSocket(WireProtocol):
    """uvicorn's ``ws`` protocol class for the notifier (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._gateway: Gateway = app_state[GATEWAY]
        settings = self._gateway.notifier.settings
        super().__init__(server_state.connections, settings.max_frame_bytes)
        self.conn: Connection | None = None
        self._bucket: TokenBucket | None = None
        self._inbox: list[str | None] = []  # None: a binary frame
        self._worker: asyncio.Task[None] | None = None

    def handshake(self, request: Request) -> Response:
        settings = self._gateway.notifier.settings
        path = request.path.partition("?")[0]
        if path != PATH:
            response = self._ws.reject(404, "Not Found\n")
        elif not origin_allowed(request.headers.get("Origin"), settings.notifier_allowed_origins):
            metrics.REFUSED.labels("origin").inc()
            response = self._ws.reject(403, "origin not allowed\n")
        else:
            response = super().handshake(request)
        log.info('%s - "WebSocket %s" %d', _peer(self), request.path, response.status_code)
        return response

    def opened(self, request: Request) -> None:
        notifier = self._gateway.notifier
        offered = [
            p.strip()
            for h in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in h.split(",")
        ]
        query = dict(parse_qsl(request.path.partition("?")[2]))
        creds = credentials(request.headers, offered, query)
        # Accepted first so that browsers, which cannot see a refused handshake's status,
        # get 1008.
        try:
            if creds.token is None:
                raise InvalidToken("no token")
            principal = notifier.codec.verify(creds.token)
        except InvalidToken:
            metrics.REFUSED.labels("token").inc()
            self.close(POLICY_VIOLATION, "invalid or missing token")
            return
        settings = notifier.settings
        self._bucket = TokenBucket(
            settings.client_rate_per_second, settings.client_burst, time.monotonic()
        )
        self._gateway.sockets.add(self)
        self._work(principal)

    def text_received(self, text: str) -> None:
        self._frame_received(text)

    def binary_received(self, data: bytes) -> None:
        self._frame_received(None)

    def lost(self) -> None:
        self._gateway.sockets.discard(self)
        if self._worker is None:
            self._end()
        # else: the worker ends the session when it finishes (it may hold a fresh slot)

    def shutdown(self) -> None:
        """uvicorn's server is stopping."""
        self.end_with(1001, "server shutting down")

    def end_with(self, code: int, reason: str) -> None:
        if self.conn is not None:
            self.conn.close(code, reason)
        else:
            self.close(code, reason)

    # Internals ---------------------------------------------------------------------------

    def _frame_received(self, text: str | None) -> None:
        if self._bucket is None or (self.conn is not None and self.conn.is_closing):
            return  # refused or closing: nothing more is read
        if not self._bucket.take(time.monotonic()):
            metrics.REFUSED.labels("rate_limit").inc()
            self.end_with(POLICY_VIOLATION, "rate limit exceeded")
            return
        self._inbox.append(text)
        if self._worker is None:
            self._work(None)

    def _work(self, principal: Principal | None) -> None:
        """Run the waiting part (opening the session, then the queued frames) in one task;
        the client's frames are not read meanwhile."""
        self.transport.pause_reading()
        self._worker = self._gateway.spawn(self._serve(principal))

    async def _serve(self, principal: Principal | None) -> None:
        notifier = self._gateway.notifier
        try:
            if principal is not None:
                self.conn = await open_session(notifier, principal, self)
                if self.conn is None:
                    self._bucket = None  # refused: nothing more is read
                    self.close(POLICY_VIOLATION, "too many connections")
            while self._inbox and (conn := self._serving()) is not None:
                text = self._inbox.pop(0)
                if text is None:
                    conn.offer(frames.error(frames.BAD_FRAME, "frames are JSON text"))
                    continue
                await handlers.handle_client_text(conn, text, notifier.deps, notifier.codec)
        except Exception:
            log.exception("client frame failed")
            self.end_with(INTERNAL_ERROR, "internal error")
        finally:
            self._worker = None
            self._inbox.clear()
            if self.disconnected:
                self._end()
            else:
                self.transport.resume_reading()

    def _serving(self) -> Connection | None:
        """The connection, while its frames are still to be handled."""
        conn = self.conn
        if conn is None or conn.is_closing or self.disconnected:
            return None
        return conn

    def _end(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self._gateway.spawn(end_session(self._gateway.notifier, conn))


def _peer(proto: WireProtocol) -> str:
    with contextlib.suppress(Exception):
        host, port = proto.transport.get_extra_info("peername")[:2]
        return f"{host}:{port}"
    return "-"
