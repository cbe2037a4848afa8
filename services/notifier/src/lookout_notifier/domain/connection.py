"""One client connection: its rooms, and the bound on what it has not sent yet.

Fan-out never waits on a client: a frame is handed to the connection's transport at once
(a WebSocket writes it to its socket; SSE queues it for its sender). What a connection has
not sent is bounded twice: ``queue_size`` live frames and ``max_unsent_bytes`` of them not
yet taken by the peer's socket, as its transport counts them (the kernel's socket buffers
come on top). A client past either bound is closed with 1013 (try again later) and everyone
else keeps receiving. Frames of a room being subscribed are held back until its replay has
been queued, so a client sees the replay and the live frames in seq order, without gap or
duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lookout_shared.tokens import Principal

from lookout_notifier import metrics
from lookout_notifier.domain import frames
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.outgoing import Outgoing
from lookout_notifier.domain.rooms import may_receive

if TYPE_CHECKING:  # ports.py names the domain's types; the protocol is only an annotation here
    from lookout_notifier.ports import Transport

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_SECONDS = 5.0


# How many frames past a gap a subscription remembers before it gives the gap up.
AHEAD_LIMIT = 256


@dataclass(slots=True)
class _Subscription:
    # Where the client is in the room's numbering: the epoch its seqs count in (None until
    # the room's first event), every seq up to ``last_seq`` given, and the seqs given past
    # a gap. Frames may come a little out of order: instances number a room as each first
    # meets an event, and their queues (and concurrent deliveries) need not agree on the
    # order, so a seq below one already sent is late, not necessarily a duplicate.
    epoch: str | None = None
    last_seq: int = 0
    ahead: set[int] = field(default_factory=set)
    # Live frames that arrived while the replay was being read: (epoch, seq, frame).
    pending: list[tuple[str | None, int, Outgoing]] | None = field(default_factory=list)


class Connection:
    __slots__ = (
        "_expiry",
        "_max_unsent_bytes",
        "_queue_size",
        "_subscriptions",
        "_transport",
        "close_code",
        "close_reason",
        "id",
        "principal",
    )

    def __init__(
        self, principal: Principal, transport: Transport, queue_size: int, max_unsent_bytes: int
    ) -> None:
        self.id = uuid.uuid4()
        self.principal = principal
        self._transport = transport
        self._queue_size = queue_size
        self._max_unsent_bytes = max_unsent_bytes
        self._subscriptions: dict[str, _Subscription] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def rooms(self) -> list[str]:
        return list(self._subscriptions)

    @property
    def is_closing(self) -> bool:
        return self.close_code is not None

    # Sending -------------------------------------------------------------------------------

    def offer(self, frame: Outgoing | str) -> bool:
        """Hand a live frame over without waiting; past a bound the connection is closed
        with 1013."""
        if self.close_code is not None:
            return False
        if isinstance(frame, str):
            frame = Outgoing(frame)
        frames_unsent, bytes_unsent = self._transport.unsent()
        if (
            frames_unsent >= self._queue_size
            or bytes_unsent + len(frame.text) > self._max_unsent_bytes
        ):
            metrics.SLOW_CLIENTS.inc()
            self.close(TRY_AGAIN_LATER, "send queue full")
            return False
        self._transport.write(frame, True)
        return True

    def deliver(
        self, room: str, epoch: str | None, seq: int, tenant_id: uuid.UUID | None, frame: Outgoing
    ) -> bool:
        """A live frame of ``room``: filtered by tenant before it is ever sent. True when
        it was sent (or held for the subscription being set up)."""
        sub = self._subscriptions.get(room)
        if sub is None or not may_receive(self.principal, tenant_id):
            return False
        if sub.pending is not None:
            sub.pending.append((epoch, seq, frame))
            return True
        return self._advance(room, sub, epoch, seq, frame)

    def _advance(
        self, room: str, sub: _Subscription, epoch: str | None, seq: int, frame: Outgoing
    ) -> bool:
        """Send a live frame the client does not have yet. A frame of another epoch than
        the client's means the room's numbering was lost: the client is told (reset) and
        follows the new numbering from this frame on, rather than having it dropped as
        already seen."""
        if epoch != sub.epoch:
            if sub.epoch is not None:  # None: the room had no numbering yet, nothing lost
                if not self.offer(frames.reset(room, epoch, seq - 1)):
                    return False
                sub.last_seq = seq - 1
            sub.epoch = epoch
            sub.ahead.clear()
        if seq <= sub.last_seq or seq in sub.ahead:
            return False  # already given (a replayed frame, or one event delivered twice)
        _given(sub, seq)
        return self.offer(frame)

    def retract(self, room: str, epoch: str | None, seq: int, to: Position | None) -> None:
        """Take back a frame given at ``seq`` of ``epoch`` ahead of its numbering. A frame
        still held for a subscription being set up is dropped. One the client has: with
        ``to`` (the numbering turned out otherwise), the client gets a ``reset`` to that
        position, since the seq it holds may be another event's (a resume from it could
        skip that one), and the event follows at its actual seq; without (the numbering
        failed; the seq is past the room's numbering, so a resume from it is answered
        recovered: false), the seq just counts as not given, so the redelivered event is
        not dropped as a duplicate."""
        sub = self._subscriptions.get(room)
        if sub is None:
            return
        if sub.pending is not None:  # held, never sent
            sub.pending = [held for held in sub.pending if held[:2] != (epoch, seq)]
            return
        if to is not None:
            if self.offer(frames.reset(room, to.epoch, to.seq)):
                sub.epoch, sub.last_seq = to.epoch, to.seq
                sub.ahead.clear()
            return
        if sub.epoch != epoch or sub.last_seq - seq > AHEAD_LIMIT:
            return
        if seq <= sub.last_seq:  # the watermark moved over it: reopen the gap
            sub.ahead.update(range(seq + 1, sub.last_seq + 1))
            sub.last_seq = seq - 1
        else:
            sub.ahead.discard(seq)

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
        """Send ``first`` (the ack), the replayed frames, then the held live frames after
        ``at`` (where the client is), and go live."""
        sub = self._subscriptions.get(room)
        if sub is None or sub.pending is None:
            return
        held, sub.pending = sub.pending, None
        sub.epoch, sub.last_seq = at.epoch, at.seq
        sub.ahead.clear()
        if self.is_closing:
            return
        for text in first:
            self._transport.write(Outgoing(text), False)
        for seq, text in replayed:
            if seq > sub.last_seq:
                sub.last_seq = seq
                self._transport.write(Outgoing(text), False)
        for epoch, seq, frame in held:  # live frames: bounded like any other
            self._advance(room, sub, epoch, seq, frame)

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
        """Close with ``code`` after what was sent (idempotent; first code wins)."""
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        self.ended()
        self._transport.close(code, reason)

    def ended(self) -> None:
        """The connection is over (closed, or the peer left): no timer outlives it."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None


def _given(sub: _Subscription, seq: int) -> None:
    """Record ``seq`` as given: the watermark moves over every seq given without a gap."""
    if seq != sub.last_seq + 1:
        sub.ahead.add(seq)
        if len(sub.ahead) > AHEAD_LIMIT:  # the gap never filled (frames not for this client)
            sub.last_seq = max(sub.ahead)
            sub.ahead.clear()
        return
    sub.last_seq = seq
    while sub.last_seq + 1 in sub.ahead:
        sub.last_seq += 1
        sub.ahead.remove(sub.last_seq)
