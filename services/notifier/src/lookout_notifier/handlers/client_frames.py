"""A frame from a client: subscribe (with replay), unsubscribe, ping, re-authenticate."""

from __future__ import annotations

import asyncio
import contextlib

from lookout_shared.tokens import InvalidToken, Principal, TokenCodec

from lookout_notifier.domain import frames
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.frames import Auth, Ping, Subscribe, Unsubscribe
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.hub import Hub
from lookout_notifier.domain.rooms import OWNED_KINDS, Owner, Room, may_join, may_receive
from lookout_notifier.ports import Deps


async def handle_client_text(
    conn: Connection, text: str, deps: Deps, codec: TokenCodec | None = None
) -> None:
    try:
        frame = frames.parse_client_frame(text)
    except frames.FrameError as exc:
        conn.offer(frames.error(exc.code, exc.detail))
        return
    if isinstance(frame, Subscribe):
        await subscribe(conn, frame, deps)
    elif isinstance(frame, Unsubscribe):
        unsubscribe(conn, frame, deps.hub)
    elif isinstance(frame, Ping):
        conn.offer(frames.control("pong"))
    elif isinstance(frame, Auth) and codec is not None:
        reauthenticate(conn, frame, codec)


async def may_subscribe(principal: Principal, room: Room, deps: Deps) -> bool:
    """Deny by default; a stream or job nobody has named yet gets a short wait for the
    event that may be in flight (the id is fresh from a REST answer)."""
    if room.kind not in OWNED_KINDS or principal.is_superuser:
        return may_join(principal, room, None)
    with deps.owners.watching(room.id) as learned:
        owner: Owner = await deps.history.owner_of(room.id)
        if owner is None and deps.owner_wait_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(learned, deps.owner_wait_seconds)
            owner = await deps.history.owner_of(room.id)
    return may_join(principal, room, owner)


async def subscribe(conn: Connection, frame: Subscribe, deps: Deps) -> None:
    if not await may_subscribe(conn.principal, frame.room, deps):
        room = str(frame.room)
        conn.offer(frames.error(frames.FORBIDDEN_ROOM, frames.FORBIDDEN_DETAIL, room))
        return
    await join(conn, frame, deps)


async def join(conn: Connection, frame: Subscribe, deps: Deps) -> None:
    """Join an authorised room, replaying from ``since`` (of ``epoch``) when asked."""
    room, history = str(frame.room), deps.history
    # Join first: live frames are held from here on, so whatever the reads below miss
    # arrives live, and whatever they include is not delivered twice.
    deps.hub.join(room, conn)
    if frame.since is not None:
        replay = await history.replay(frame.room, frame.since, frame.epoch)
        current = replay.current
        if replay.recovered:
            replayed = [
                (f.seq, f.text) for f in replay.frames if may_receive(conn.principal, f.tenant_id)
            ]
            ack = _ack(room, current, recovered=True)
            conn.finish_subscription(room, [ack], replayed, Position(current.epoch, frame.since))
            return
        recovered: bool | None = False
    else:
        current, recovered = await history.current(frame.room), None
    # No replay: the client starts from the ack's seq, which must precede any held frame.
    last = min([current.seq, *(seq - 1 for seq in conn.held_seqs(room, current.epoch))])
    at = Position(current.epoch, last)
    conn.finish_subscription(room, [_ack(room, at, recovered)], [], at)


def _ack(room: str, at: Position, recovered: bool | None) -> str:
    extra: dict[str, object] = {} if at.epoch is None else {"epoch": at.epoch}
    if recovered is not None:
        extra["recovered"] = recovered
    return frames.control("subscribed", room=room, seq=at.seq, **extra)


def unsubscribe(conn: Connection, frame: Unsubscribe, hub: Hub) -> None:
    room = str(frame.room)
    hub.leave(room, conn)
    conn.offer(frames.control("unsubscribed", room=room))


def reauthenticate(conn: Connection, frame: Auth, codec: TokenCodec) -> None:
    """Extend the connection with a fresh token of the same identity; anything else leaves
    the connection as it was (it still closes when the first token expires)."""
    try:
        fresh = codec.verify(frame.token)
    except InvalidToken:
        conn.offer(frames.error(frames.INVALID_TOKEN, "token is invalid or expired"))
        return
    now = conn.principal
    if (fresh.user_id, fresh.tenant_id, fresh.role) != (now.user_id, now.tenant_id, now.role):
        conn.offer(frames.error(frames.TOKEN_MISMATCH, "token is for another identity"))
        return
    conn.reauthenticate(fresh)
    conn.offer(frames.control("authenticated", expires_at=int(fresh.expires_at.timestamp())))
