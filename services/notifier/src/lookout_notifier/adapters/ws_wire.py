"""A WebSocket served by an asyncio protocol object alone: no task, queue or ASGI scope per
connection, so an idle connection costs its socket, this object and the sans-I/O parser.

uvicorn takes a protocol class as its ``ws`` setting (see ``entrypoints.http.server_config``): it parses
the HTTP request and hands the upgrade to this class on the same port, so ``/ws`` keeps its
URL while HTTP routes (SSE, health, metrics) stay with the ASGI app.

``websockets``' sans-I/O ``ServerProtocol`` does the handshake and parses client frames
(masking, fragments, control frames, size limit, the closing handshake), which is why it
is used rather than hand-written parsing. Server frames are written straight to the
asyncio transport, already encoded (see ``outgoing.Outgoing``): the same bytes for every
client of a room, with no copy or call per client beyond ``transport.write``. The
transport's buffer is the send queue; :meth:`unsent` reports it to the connection's bound.

A close never waits on a peer that stopped reading: the close frame goes behind the
unsent data at once, and a peer that has not completed the closing handshake within
``CLOSE_TIMEOUT_SECONDS`` is dropped (the transport aborted).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from lookout_notifier.domain.connection import CLOSE_TIMEOUT_SECONDS
from lookout_notifier.domain.outgoing import Outgoing

# An unsolicited ping with no payload, the same bytes for every connection.
PING = Frame(Opcode.PING, b"").serialize(mask=False, extensions=[])
INVALID_DATA = 1007
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class Handshake(ServerProtocol):
    """The sans-I/O protocol, answering ``bearer`` when the client offers it (the token
    follows it in the list) and no subprotocol otherwise."""

    def select_subprotocol(self, subprotocols: Any) -> Subprotocol | None:
        return Subprotocol("bearer") if "bearer" in subprotocols else None


class WireProtocol(asyncio.Protocol):
    """The wire side of one WebSocket; subclasses decide what to accept and what frames mean
    (:meth:`handshake`, :meth:`opened`, :meth:`text_received`, :meth:`lost`)."""

    def __init__(self, connections: set[Any], max_size: int) -> None:
        self._connections = connections  # uvicorn's, so shutdown reaches this one too
        self._ws = Handshake(max_size=max_size)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.last_seen = 0.0  # loop time of the peer's last bytes (heartbeat)
        self.disconnected = False
        # The parts of a fragmented message so far, and whether it is text.
        self._fragments: list[bytes] | None = None
        self._fragmented_text = False
        # Bytes ever written, and where each live frame the socket has not fully taken yet
        # ends in them (only while the transport holds something: None most of the time).
        self._written = 0
        self._backlog: deque[int] | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # What subclasses decide --------------------------------------------------------------

    def handshake(self, request: Request) -> Response:
        return self._ws.accept(request)

    def opened(self, request: Request) -> None: ...

    def text_received(self, text: str) -> None: ...

    def binary_received(self, data: bytes) -> None: ...

    def lost(self) -> None: ...

    # asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        self.last_seen = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self._connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self._ws.state is not State.CONNECTING:
            self.lost()

    def data_received(self, data: bytes) -> None:
        self.last_seen = asyncio.get_running_loop().time()
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._answer(event)
            elif isinstance(event, Frame) and event.opcode in _DATA:
                self._data_frame(event)
        self._flush()  # pongs, the close echo, a close after a protocol error

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    # The Transport port (connection.Transport) -------------------------------------------

    def unsent(self) -> tuple[int, int]:
        """Live frames not fully taken by the socket, and every byte the transport holds."""
        held = self.transport.get_write_buffer_size()
        backlog = self._backlog
        if backlog is None or held == 0:
            self._backlog = None
            return 0, held
        taken = self._written - held
        while backlog and backlog[0] <= taken:
            backlog.popleft()
        return len(backlog), held

    def write(self, frame: Outgoing, live: bool) -> None:
        if self._ws.state is not State.OPEN or self.transport.is_closing():
            return
        self._send(frame.wire)
        if live and self.transport.get_write_buffer_size():  # not all taken at once
            if self._backlog is None:
                self._backlog = deque()
            self._backlog.append(self._written)

    def close(self, code: int, reason: str) -> None:
        """The close frame behind what is unsent; the peer gets CLOSE_TIMEOUT_SECONDS to
        answer it (and to read what precedes it), then the socket is dropped."""
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason)
            self._flush()
        if self._close_timer is None and not self.disconnected:
            self._close_timer = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT_SECONDS, self.transport.abort
            )
        self.transport.resume_reading()  # the peer's answering close ends the connection

    def ping(self) -> None:
        if self._ws.state is State.OPEN and not self.transport.is_closing():
            self._send(PING)

    @property
    def close_sent(self) -> int | None:
        """The code of the close frame sent, if any."""
        sent = self._ws.close_sent
        return sent.code if sent is not None else None

    # Internals ---------------------------------------------------------------------------

    def _answer(self, request: Request) -> None:
        response = self.handshake(request)
        self._ws.send_response(response)
        self._flush()
        if response.status_code == 101:
            self.opened(request)
        else:
            self.transport.close()

    def _data_frame(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.CONT:
            self._fragments, self._fragmented_text = [], frame.opcode is Opcode.TEXT
        if self._fragments is None:
            return  # the parser lets no stray continuation through; nothing to add it to
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        data, self._fragments = b"".join(self._fragments), None
        if self._ws.state is not State.OPEN:
            return  # closing: the peer's frames no longer matter
        if not self._fragmented_text:
            self.binary_received(data)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.close(INVALID_DATA, "invalid UTF-8")
            return
        self.text_received(text)

    def _send(self, data: bytes) -> None:
        self.transport.write(data)
        self._written += len(data)

    def _flush(self) -> None:
        for chunk in self._ws.data_to_send():
            if chunk:
                self._send(chunk)
            else:  # the closing handshake is over (or failed): the server closes TCP
                self.transport.close()
