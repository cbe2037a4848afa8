"""An event from the broker: numbered in each of its rooms, kept for replay, fanned out.

Early frames: numbering an event is a Redis round trip, which under load (every process of
the system waking for the same write) took longer than everything else the notifier does
for it. A room whose last event this instance numbered itself, while no other instance is
numbering (domain.history.KnownPositions), has a predictable next seq: its frame goes out
at once, before the round trip, and the numbering only confirms it. When the numbering
turns out otherwise (Redis lost the room's numbering, another instance numbered first, an
event met again), each connection that got the early frame is sent a ``reset`` to the
event's actual position and then the event at that position; when the numbering fails,
the early frame's seq counts as not given (Connection.retract) and the broker's
redelivery sends the event again. Either way nothing is lost and seqs never go back
within an epoch; those clients may see the event twice.
"""

from __future__ import annotations

from lookout_shared.envelope import Envelope

from lookout_notifier import metrics
from lookout_notifier.domain import frames
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.routing import owner_facts, rooms_for
from lookout_notifier.ports import Deps, Record

# (room, predicted position, the connections that took the early frame), per record
Early = tuple[str, Position, list[Connection]] | None


async def handle_event(envelope: Envelope, deps: Deps) -> None:
    """Number the event's frame in each of its rooms, keep it for replay, fan it out."""
    body = frames.event_body(envelope)  # the data is serialised once per event
    records = [
        Record(d.room, d.tenant_id, frames.event_frame(d.room, body)) for d in rooms_for(envelope)
    ]
    facts = owner_facts(envelope)
    early = [_send_early(record, deps) for record in records]
    try:
        positions = await deps.history.record(envelope.id, records, facts)
    except BaseException:
        for sent in early:
            _take_back(sent, None)  # the redelivery numbers it, and sends it again
        raise
    deps.owners.learned(fact.entity_id for fact in facts)
    for record, at, sent in zip(records, positions, early, strict=True):
        if sent is not None:
            if sent[1] == at:
                metrics.EARLY_FRAMES.labels("confirmed").inc()
                continue
            metrics.EARLY_FRAMES.labels("taken_back").inc()
            _take_back(sent, _actual(sent[1], at))
        if at.seq and at.epoch:  # seq 0: numbered in an epoch the room has left
            text = record.frame.text(at.seq, at.epoch)
            deps.hub.fan_out(str(record.room), at, record.tenant_id, text)
    metrics.EVENTS.inc()


def _send_early(record: Record, deps: Deps) -> Early:
    room = str(record.room)
    if not deps.hub.has_members(room):
        return None
    guess = deps.history.predict(record.room)
    if guess is None or guess.epoch is None:
        return None
    text = record.frame.text(guess.seq, guess.epoch)
    return room, guess, deps.hub.fan_out(room, guess, record.tenant_id, text)


def _actual(guess: Position, at: Position) -> Position:
    """Where a client that got the early frame stands once the numbering said ``at``: just
    before the event. Seq 0 (the event was numbered in an epoch the room has left, and is
    not sent again): where this instance knew the room, in the same epoch (the counter only
    grows), or the start of the room's new one."""
    if at.seq:
        return Position(at.epoch, at.seq - 1)
    return Position(at.epoch, guess.seq - 1 if at.epoch == guess.epoch else 0)


def _take_back(sent: Early, to: Position | None) -> None:
    if sent is not None:
        room, guess, receivers = sent
        for conn in receivers:
            conn.retract(room, guess.epoch, guess.seq, to)
