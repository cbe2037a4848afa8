"""uvicorn's sans-I/O WebSocket protocol, plus two things ASGI hides from the app.

- How many bytes the asyncio transport still holds for the peer (the ASGI scope extension
  :data:`WRITE_BUFFER`), so a connection's bound on unsent data counts them.
- A close that never waits on a peer that stopped reading. uvicorn's own close first waits
  for the write buffer to drain (forever, for such a peer), then closes gracefully (which
  also waits for the drain). Here the close frame goes behind the unsent data at once, and a
  peer that has not taken it within ``close_timeout`` is dropped (the transport aborted),
  the same after a missed heartbeat pong.

uvicorn takes a protocol class as its ``ws`` setting (see ``app.server_config``).
"""

from __future__ import annotations

from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from lookout_notifier.connection import CLOSE_TIMEOUT_SECONDS

# scope["extensions"][WRITE_BUFFER]["size"]() -> bytes the transport holds for the peer.
WRITE_BUFFER = "lookout.write_buffer"


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # How long a closed peer has to take what is left (the close frame last).
        self.close_timeout = CLOSE_TIMEOUT_SECONDS

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # None: the handshake was refused
        if scope is not None:
            scope["extensions"][WRITE_BUFFER] = {"size": self.transport.get_write_buffer_size}

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and self._open():
            self._close_now(message.get("code", 1000), message.get("reason") or "")
            return
        await super().send(message)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()  # sends 1011 and closes once the buffer drains...
        self.loop.call_later(self.close_timeout, self.transport.abort)  # ...or not at all

    def _open(self) -> bool:
        """Past the handshake, not closing yet: the state in which uvicorn's own close
        (which this replaces) would run."""
        return (
            self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and not self.transport.is_closing()
        )

    def _close_now(self, code: int, reason: str) -> None:
        """uvicorn's close without its wait for ``writable``; the timer aborts instead of
        closing, and is cancelled when the peer answers the close (uvicorn then closes)."""
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # keep reading: the peer's answering close ends the connection
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)
