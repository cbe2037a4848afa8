"""One client connection: a bounded send queue drained by its own sender task.

Fan-out never waits on a client: frames are offered with ``put_nowait``. What a connection
has not sent is bounded twice: ``queue_size`` live frames in its queue, and
``max_unsent_bytes`` counting the queue's live frames and what the transport still holds
for the peer (the kernel's socket buffers come on top). A client past either bound is
closed with 1013 (try again later) and everyone else keeps receiving. Frames of a room being
subscribed are held back until its replay has been queued, so a client sees the replay and
the live frames in seq order, without gap or duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from lookout_shared.tokens import Principal

from lookout_notifier import metrics
from lookout_notifier.domain import frames
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import may_receive

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_SECONDS = 5.0


class Transport(Protocol):
    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer's socket (0 where unknown)."""
        ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class _Subscription:
    # Where the client is in the room's numbering: the epoch its seqs count in (None until
    # the room's first event) and the last seq it was given.
    epoch: str | None = None
    last_seq: int = 0
    # Live frames that arrived while the replay was being read: (epoch, seq, text).
    pending: list[tuple[str | None, int, str]] | None = field(default_factory=list)


class Connection:
    def __init__(
        self, principal: Principal, transport: Transport, queue_size: int, max_unsent_bytes: int
    ) -> None:
        self.id = uuid.uuid4()
        self.principal = principal
        self._transport = transport
        # Bounded by offer(): queue_size live frames, max_unsent_bytes with the transport's
        # buffer. A replay goes in on top (it is bounded by the history size) so a client
        # that asks for one is not closed for it. Items: (text, counted in _live_bytes).
        self._queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self._queue_size = queue_size
        self._max_unsent_bytes = max_unsent_bytes
        self._live_bytes = 0  # frames are ASCII JSON: len() is their size in bytes
        self._subscriptions: dict[str, _Subscription] = {}
        self._closing = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.peer_gone = False
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def rooms(self) -> list[str]:
        return list(self._subscriptions)

    @property
    def is_closing(self) -> bool:
        return self._closing.is_set()

    # Sending -------------------------------------------------------------------------------

    def offer(self, text: str) -> bool:
        """Queue a frame without waiting; past a bound the connection is closed with 1013."""
        if self.is_closing:
            return False
        unsent = self._live_bytes + len(text) + self._transport.buffered()
        if self._queue.qsize() >= self._queue_size or unsent > self._max_unsent_bytes:
            metrics.SLOW_CLIENTS.inc()
            self.close(TRY_AGAIN_LATER, "send queue full")
            return False
        self._live_bytes += len(text)
        self._queue.put_nowait((text, True))
        return True

    def deliver(
        self, room: str, epoch: str | None, seq: int, tenant_id: uuid.UUID | None, text: str
    ) -> bool:
        """A live frame of ``room``: filtered by tenant before it is ever queued. True when
        it was queued (or held for the subscription being set up)."""
        sub = self._subscriptions.get(room)
        if sub is None or not may_receive(self.principal, tenant_id):
            return False
        if sub.pending is not None:
            sub.pending.append((epoch, seq, text))
            return True
        return self._advance(room, sub, epoch, seq, text)

    def _advance(
        self, room: str, sub: _Subscription, epoch: str | None, seq: int, text: str
    ) -> bool:
        """Queue a live frame the client does not have yet. A frame of another epoch than
        the client's means the room's numbering was lost: the client is told (reset) and
        follows the new numbering from this frame on, rather than having it dropped as
        already seen."""
        if epoch != sub.epoch:
            if sub.epoch is not None:  # None: the room had no numbering yet, nothing lost
                if not self.offer(frames.reset(room, epoch, seq - 1)):
                    return False
                sub.last_seq = seq - 1
            sub.epoch = epoch
        if seq <= sub.last_seq:
            return False  # already given (a replayed frame, or one event delivered twice)
        sub.last_seq = seq
        return self.offer(text)

    # Subscriptions -------------------------------------------------------------------------

    def begin_subscription(self, room: str) -> None:
        """Start holding ``room``'s live frames while its seq and replay are read."""
        self._subscriptions[room] = _Subscription()

    def held_seqs(self, room: str, epoch: str | None) -> list[int]:
        """The seqs of the frames of ``epoch`` held for a subscription being set up."""
        sub = self._subscriptions.get(room)
        held = sub.pending if sub and sub.pending else []
        return [seq for held_epoch, seq, _ in held if held_epoch == epoch]

    def finish_subscription(
        self,
        room: str,
        first: list[str],
        replayed: list[tuple[int, str]],
        at: Position,
    ) -> None:
        """Queue ``first`` (the ack), the replayed frames, then the held live frames after
        ``at`` (where the client is), and go live."""
        sub = self._subscriptions.get(room)
        if sub is None or sub.pending is None:
            return
        held, sub.pending = sub.pending, None
        sub.epoch, sub.last_seq = at.epoch, at.seq
        if self.is_closing:
            return
        for text in first:
            self._queue.put_nowait((text, False))
        for seq, text in replayed:
            if seq > sub.last_seq:
                sub.last_seq = seq
                self._queue.put_nowait((text, False))
        for epoch, seq, text in held:  # live frames: bounded like any other
            self._advance(room, sub, epoch, seq, text)

    def drop_subscription(self, room: str) -> None:
        self._subscriptions.pop(room, None)

    # Lifecycle -----------------------------------------------------------------------------

    def expire_at(self, when: datetime) -> None:
        """Close with 1008 at ``when`` (the token's expiry) unless called again before."""
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max((when - datetime.now(UTC)).total_seconds(), 0.0)
        self._expiry = asyncio.get_running_loop().call_later(
            delay, self.close, POLICY_VIOLATION, "token expired"
        )

    def reauthenticate(self, principal: Principal) -> None:
        """A fresh token of the same identity: keep the connection until it expires."""
        self.principal = principal
        self.expire_at(principal.expires_at)

    def close(self, code: int, reason: str) -> None:
        """Ask for the connection to be closed with ``code`` (idempotent; first code wins)."""
        if self.is_closing:
            return
        self.close_code, self.close_reason = code, reason
        self._closing.set()

    async def serve(self, reader: Coroutine[Any, Any, None]) -> None:
        """Run the sender and ``reader`` (the client's frames) until either ends or a close is
        asked for; then close the transport with the code asked, unless the peer left."""
        tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(reader),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not _is_disconnect(result):
                log.error("connection task failed", exc_info=result)
        if self.close_code is not None and not self.peer_gone:
            # A client that stopped reading may never take the close frame; don't wait forever.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._transport.close(self.close_code, self.close_reason), CLOSE_TIMEOUT_SECONDS
                )

    async def _send_loop(self) -> None:
        while True:
            text, counted = await self._queue.get()
            if counted:
                self._live_bytes -= len(text)
            await self._transport.send_text(text)
            metrics.FRAMES_SENT.inc()


def _is_disconnect(exc: BaseException) -> bool:
    # Starlette's WebSocketDisconnect / uvicorn's ClientDisconnected: the peer went away.
    return type(exc).__name__ in {"WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed"}
