"""One function per thing that happens: an event from the broker, a frame from a client."""

from __future__ import annotations

from lookout_shared.envelope import Envelope

from lookout_notifier import metrics
from lookout_notifier.connection import Connection
from lookout_notifier.domain import frames
from lookout_notifier.domain.frames import Ping, Subscribe, Unsubscribe
from lookout_notifier.domain.rooms import OWNED_KINDS, may_join, may_receive
from lookout_notifier.domain.routing import owners_named, rooms_for
from lookout_notifier.hub import Hub
from lookout_notifier.ports import Record, RoomHistory


async def handle_event(envelope: Envelope, hub: Hub, history: RoomHistory) -> None:
    """Number the event's frame in each of its rooms, keep it for replay, fan it out."""
    body = frames.event_body(envelope)  # the data is serialised once per event
    records = [
        Record(d.room, d.tenant_id, frames.event_frame(d.room, body)) for d in rooms_for(envelope)
    ]
    seqs = await history.record(envelope.id, records, owners_named(envelope))
    for record, seq in zip(records, seqs, strict=True):
        hub.fan_out(str(record.room), seq, record.tenant_id, record.frame.text(seq))
    metrics.EVENTS.inc()


async def handle_client_text(conn: Connection, text: str, hub: Hub, history: RoomHistory) -> None:
    try:
        frame = frames.parse_client_frame(text)
    except frames.FrameError as exc:
        conn.offer(frames.error(exc.code, exc.detail))
        return
    if isinstance(frame, Subscribe):
        await subscribe(conn, frame, hub, history)
    elif isinstance(frame, Unsubscribe):
        unsubscribe(conn, frame, hub)
    elif isinstance(frame, Ping):
        conn.offer(frames.control("pong"))


async def subscribe(conn: Connection, frame: Subscribe, hub: Hub, history: RoomHistory) -> None:
    room = str(frame.room)
    owner = await history.owner_of(frame.room.id) if frame.room.kind in OWNED_KINDS else None
    if not may_join(conn.principal, frame.room, owner):
        conn.offer(frames.error(frames.FORBIDDEN_ROOM, frames.FORBIDDEN_DETAIL, room))
        return
    # Join first: live frames are held from here on, so whatever the reads below miss
    # arrives live, and whatever they include is not delivered twice.
    hub.join(room, conn)
    if frame.since is not None:
        replay = await history.replay(frame.room, frame.since)
        if replay.recovered:
            replayed = [
                (f.seq, f.text) for f in replay.frames if may_receive(conn.principal, f.tenant_id)
            ]
            ack = frames.control("subscribed", room=room, seq=replay.seq, recovered=True)
            conn.finish_subscription(room, [ack], replayed, frame.since)
            return
        current, recovered = replay.seq, False
    else:
        current, recovered = await history.current_seq(frame.room), None
    # No replay: the client starts from the ack's seq, which must precede any held frame.
    last = min([current, *(seq - 1 for seq in conn.held_seqs(room))])
    extra = {} if recovered is None else {"recovered": recovered}
    ack = frames.control("subscribed", room=room, seq=last, **extra)
    conn.finish_subscription(room, [ack], [], last)


def unsubscribe(conn: Connection, frame: Unsubscribe, hub: Hub) -> None:
    room = str(frame.room)
    hub.leave(room, conn)
    conn.offer(frames.control("unsubscribed", room=room))
