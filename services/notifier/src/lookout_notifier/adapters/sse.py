"""The Transport port over an ASGI HTTP response streaming ``text/event-stream``.

Frames are the same JSON as on ``/ws``, one ``data:`` line each. Event frames carry an
``id:`` naming every room's position (epoch and last seq, from the acks, resets and
events), so a reconnecting EventSource resumes all of them. The ASGI server's send is
awaited, so frames wait in this transport's queue for its sender (:meth:`SseTransport.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping

from starlette.types import Receive, Send

from lookout_notifier.domain.connection import CLOSE_TIMEOUT_SECONDS
from lookout_notifier.domain.event_ids import encode_event_id
from lookout_notifier.domain.frames import frame_position
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.outgoing import Outgoing

# Written when the stream was idle for a heartbeat: it keeps proxies and peers from timing
# out and makes a write fail on a dead peer.
_COMMENT = b": keep-alive\n\n"


class SseTransport:
    def __init__(self, send: Send, positions: Mapping[str, Position]) -> None:
        self._send = send
        # Each room's position the client has (Last-Event-ID, then acks, resets, events).
        self._positions = dict(positions)
        self._queue: asyncio.Queue[tuple[Outgoing, bool]] = asyncio.Queue()
        self._live_frames = self._live_bytes = 0
        self._closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_with: tuple[int, str] | None = None

    def unsent(self) -> tuple[int, int]:
        return self._live_frames, self._live_bytes

    def write(self, frame: Outgoing, live: bool) -> None:
        if live:
            self._live_frames += 1
            self._live_bytes += len(frame.text)
        self._queue.put_nowait((frame, live))

    def close(self, code: int, reason: str) -> None:
        if self._close_with is None:
            self._close_with = (code, reason)
            self._closing.set_result(None)

    async def run(self, receive: Receive, heartbeat_seconds: float) -> None:
        """Send the queued frames until the client leaves or a close is asked for; then
        say why the stream ends, unless the client left."""
        gone = asyncio.ensure_future(_disconnected(receive))
        sender = asyncio.ensure_future(self._send_forever(heartbeat_seconds))
        try:
            await asyncio.wait((gone, sender, self._closing), return_when="FIRST_COMPLETED")
        finally:
            for task in (gone, sender):
                task.cancel()
            await asyncio.gather(gone, sender, return_exceptions=True)
        peer_left = not gone.cancelled()
        if self._close_with is not None and not peer_left:
            code, reason = self._close_with
            # A client that stopped reading may never take the farewell; don't wait forever.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._farewell(code, reason), CLOSE_TIMEOUT_SECONDS)

    async def _send_forever(self, heartbeat_seconds: float) -> None:
        while True:
            try:
                frame, live = await asyncio.wait_for(self._queue.get(), heartbeat_seconds)
            except TimeoutError:
                await self._write(_COMMENT)
                continue
            if live:
                self._live_frames -= 1
                self._live_bytes -= len(frame.text)
            await self._write(self._event(frame.text))

    def _event(self, text: str) -> bytes:
        position = frame_position(text)
        if position is not None:
            room, self._positions[room] = position
            return f"id: {encode_event_id(self._positions)}\ndata: {text}\n\n".encode()
        if text.startswith(('{"op":"subscribed"', '{"op":"reset"')):
            self._note_ack(json.loads(text))
        return f"data: {text}\n\n".encode()

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

    async def _farewell(self, code: int, reason: str) -> None:
        """SSE has no close codes: the last event says why the stream ends."""
        farewell = json.dumps({"op": "close", "code": code, "reason": reason})
        await self._write(f"data: {farewell}\n\n".encode())
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, body: bytes) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
