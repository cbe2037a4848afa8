"""The Transport port over an ASGI HTTP response streaming ``text/event-stream``.

Frames are the same JSON as on ``/ws``, one ``data:`` line each. Event frames carry an
``id:`` naming every room's last seq, so a reconnecting EventSource resumes all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import Send

from lookout_notifier.domain.event_ids import encode_event_id
from lookout_notifier.domain.frames import frame_position

# Offered to the send queue to write a comment: it keeps proxies and peers from timing out
# and makes a write fail on a dead peer.
HEARTBEAT = ""
_COMMENT = b": keep-alive\n\n"


class SseTransport:
    def __init__(self, send: Send, seqs: Mapping[str, int]) -> None:
        self._send = send
        # Each room's last seq the client has (from Last-Event-ID, then acks and events).
        self._seqs = dict(seqs)

    def buffered(self) -> int:
        return 0  # the ASGI server's buffer is out of reach: the send queue alone is counted

    async def send_text(self, text: str) -> None:
        if text == HEARTBEAT:
            await self._write(_COMMENT)
            return
        position = frame_position(text)
        if position is not None:
            room, seq = position
            self._seqs[room] = seq
            await self._write(f"id: {encode_event_id(self._seqs)}\ndata: {text}\n\n".encode())
            return
        if text.startswith('{"op":"subscribed"'):
            self._note_ack(json.loads(text))
        await self._write(f"data: {text}\n\n".encode())

    def _note_ack(self, ack: Mapping[str, object]) -> None:
        # A replay follows a recovered ack: the client is still at its own seq until then.
        room, seq = ack.get("room"), ack.get("seq")
        if isinstance(room, str) and isinstance(seq, int) and ack.get("recovered") is not True:
            self._seqs[room] = seq

    async def close(self, code: int, reason: str) -> None:
        """Say why the stream ends (SSE has no close codes), then end it."""
        farewell = json.dumps({"op": "close", "code": code, "reason": reason})
        await self._write(f"data: {farewell}\n\n".encode())
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, body: bytes) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": True})
