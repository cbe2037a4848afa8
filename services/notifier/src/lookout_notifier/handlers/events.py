"""An event from the broker: numbered in each of its rooms, kept for replay, fanned out."""

from __future__ import annotations

from lookout_shared.envelope import Envelope

from lookout_notifier import metrics
from lookout_notifier.domain import frames
from lookout_notifier.domain.routing import owner_facts, rooms_for
from lookout_notifier.ports import Deps, Record


async def handle_event(envelope: Envelope, deps: Deps) -> None:
    """Number the event's frame in each of its rooms, keep it for replay, fan it out."""
    body = frames.event_body(envelope)  # the data is serialised once per event
    records = [
        Record(d.room, d.tenant_id, frames.event_frame(d.room, body)) for d in rooms_for(envelope)
    ]
    facts = owner_facts(envelope)
    positions = await deps.history.record(envelope.id, records, facts)
    deps.owners.learned(fact.entity_id for fact in facts)
    for record, at in zip(records, positions, strict=True):
        if at.seq and at.epoch:  # seq 0: numbered in an epoch the room has left
            text = record.frame.text(at.seq, at.epoch)
            deps.hub.fan_out(str(record.room), at, record.tenant_id, text)
    metrics.EVENTS.inc()
