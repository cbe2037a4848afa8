"""The Transport port over an ASGI HTTP response streaming ``text/event-stream``.

Frames are the same JSON as on ``/ws``, one ``data:`` line each. Event frames carry an
``id:`` naming every room's position (epoch and last seq, from the acks, resets and
events), so a reconnecting EventSource resumes all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import Send

from lookout_notifier.domain.event_ids import encode_event_id
from lookout_notifier.domain.frames import frame_position
from lookout_notifier.domain.history import Position

# Offered to the send queue to write a comment: it keeps proxies and peers from timing out
# and makes a write fail on a dead peer.
HEARTBEAT = ""
_COMMENT = b": keep-alive\n\n"


class SseTransport:
    def __init__(self, send: Send, positions: Mapping[str, Position]) -> None:
        self._send = send
        # Each room's position the client has (Last-Event-ID, then acks, resets, events).
        self._positions = dict(positions)

    def buffered(self) -> int:
        return 0  # the ASGI server's buffer is out of reach: the send queue alone is counted

    async def send_text(self, text: str) -> None:
        if text == HEARTBEAT:
            await self._write(_COMMENT)
            return
        position = frame_position(text)
        if position is not None:
            room, self._positions[room] = position
            data = f"id: {encode_event_id(self._positions)}\ndata: {text}\n\n"
            await self._write(data.encode())
            return
        if text.startswith(('{"op":"subscribed"', '{"op":"reset"')):
            self._note_ack(json.loads(text))
        await self._write(f"data: {text}\n\n".encode())

    def _note_ack(self, ack: Mapping[str, object]) -> None:
        """A subscribed or reset frame: where the client now is in the room's numbering."""
        room, seq, epoch = ack.get("room"), ack.get("seq"), ack.get("epoch")
        if not isinstance(room, str) or not isinstance(seq, int):
            return
        epoch = epoch if isinstance(epoch, str) else None
        if ack.get("recovered") is True:
            # A replay follows: the client is still at its own seq until then.
            seq = self._positions[room].seq if room in self._positions else 0
        self._positions[room] = Position(epoch, seq)

    async def close(self, code: int, reason: str) -> None:
        """Say why the stream ends (SSE has no close codes), then end it."""
        farewell = json.dumps({"op": "close", "code": code, "reason": reason})
        await self._write(f"data: {farewell}\n\n".encode())
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, body: bytes) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": True})
