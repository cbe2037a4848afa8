"""Which rooms an event reaches, and which entities' owning tenant it reveals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from lookout_shared.envelope import Envelope

from lookout_notifier.domain.rooms import Room


@dataclass(frozen=True)
class Delivery:
    """One room an event goes to, with the tenant its frame belongs to (None: superusers only)."""

    room: Room
    tenant_id: uuid.UUID | None


def rooms_for(envelope: Envelope) -> list[Delivery]:
    entity, _, _ = envelope.type.partition(".")
    tenant = envelope.tenant_id
    rooms: list[Room] = []
    if entity == "stream":
        rooms.append(Room("stream", envelope.entity_id))
    elif entity == "snapshot_job":
        rooms += [
            Room("stream", _uuid(envelope.data["stream_id"])),
            Room("jobs", envelope.entity_id),
        ]
    elif entity == "snapshot":
        rooms.append(Room("stream", _uuid(envelope.data["stream_id"])))
    elif envelope.type == "counts.changed":
        return _counts_rooms(envelope)
    else:
        return []
    if tenant is not None:
        rooms.append(Room("tenant", tenant))
    return [Delivery(room, tenant) for room in rooms]


OwnerAction = Literal["keep", "hint", "forget"]


@dataclass(frozen=True)
class OwnerFact:
    """What an event tells about the tenant owning a stream or job.

    ``keep``: a stream's own event; remembered until the stream is deleted. ``hint``: an
    event about something else naming it (a job, a snapshot); remembered for a while unless
    already known. ``forget``: stream.deleted; the stream's rooms are refused from now on.
    """

    entity_id: uuid.UUID
    tenant_id: uuid.UUID
    action: OwnerAction


def owner_facts(envelope: Envelope) -> list[OwnerFact]:
    """Stream and job ids → the tenant that owns them, as this event tells."""
    tenant = envelope.tenant_id
    if tenant is None:
        return []
    entity, _, verb = envelope.type.partition(".")
    facts = []
    for delivery in rooms_for(envelope):
        room = delivery.room
        if room.kind not in ("stream", "jobs"):
            continue
        action: OwnerAction = "hint"
        if entity == "stream" and room.id == envelope.entity_id:
            action = "forget" if verb == "deleted" else "keep"
        facts.append(OwnerFact(room.id, tenant, action))
    return facts


def _counts_rooms(envelope: Envelope) -> list[Delivery]:
    # The scope is a tenant id or "platform"; platform counts have no room (yet).
    try:
        scope = uuid.UUID(str(envelope.data["scope"]))
    except ValueError:
        return []
    if envelope.tenant_id is not None and envelope.tenant_id != scope:
        return []  # contradictory event: deliver nothing rather than risk a leak
    return [Delivery(Room("tenant", scope), scope)]


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
