"""Rooms a connection may join, and who may join them (deny by default)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final, Literal, get_args

from lookout_shared.tokens import Principal

RoomKind = Literal["stream", "tenant", "user", "jobs"]
ROOM_KINDS: tuple[RoomKind, ...] = get_args(RoomKind)
# Rooms whose owning tenant the notifier learns from events instead of from the name.
OWNED_KINDS: frozenset[RoomKind] = frozenset({"stream", "jobs"})
# The owner of a stream that was deleted: its rooms are refused like any forbidden room.
GONE: Final = "gone"
# What the notifier knows about who owns a stream or job; None: nothing seen yet.
Owner = uuid.UUID | Literal["gone"] | None


class BadRoom(ValueError):
    """The room name is not ``<kind>:<uuid>`` with a known kind."""


@dataclass(frozen=True, order=True)
class Room:
    kind: RoomKind
    id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def parse_room(name: object) -> Room:
    if not isinstance(name, str) or len(name) > 64:
        raise BadRoom("a room is a string <kind>:<uuid>")
    kind, sep, ident = name.partition(":")
    if not sep or kind not in ROOM_KINDS:
        raise BadRoom(f"room kind must be one of {', '.join(ROOM_KINDS)}")
    try:
        parsed = uuid.UUID(ident)
    except ValueError:
        raise BadRoom("room id must be a uuid") from None
    return Room(kind, parsed)


def may_join(principal: Principal, room: Room, owner: Owner) -> bool:
    """Whether ``principal`` may subscribe to ``room`` (deny by default).

    ``owner`` is the tenant known to own a stream or job: an id nobody has seen (None) or a
    deleted stream is refused, except to a superuser, who may see every tenant anyway.
    """
    if room.kind == "tenant":
        return principal.can_see_tenant(room.id)
    if room.kind == "user":
        return room.id == principal.user_id
    if room.kind in OWNED_KINDS:
        if principal.is_superuser:
            return True
        return isinstance(owner, uuid.UUID) and principal.can_see_tenant(owner)
    return False


def may_receive(principal: Principal, tenant_id: uuid.UUID | None) -> bool:
    """Whether a frame of an event of ``tenant_id`` may reach ``principal``."""
    return principal.can_see_tenant(tenant_id)
