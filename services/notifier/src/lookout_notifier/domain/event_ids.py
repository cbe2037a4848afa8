"""SSE event ids: every room's position in one id, so ``Last-Event-ID`` resumes them all.

Format: ``stream:<uuid>=<epoch>:12,tenant:<uuid>=<epoch>:40`` (rooms in the order they were
asked for; ``<room>=<seq>`` without an epoch, for a room that had no event yet, or from
before epochs, resumes by seq alone).
"""

from __future__ import annotations

from collections.abc import Mapping

from lookout_notifier.domain.frames import MAX_EPOCH_CHARS
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import BadRoom, Room, parse_room


class BadEventId(ValueError):
    pass


def encode_event_id(positions: Mapping[str, Position]) -> str:
    return ",".join(
        f"{room}={at.seq}" if at.epoch is None else f"{room}={at.epoch}:{at.seq}"
        for room, at in positions.items()
    )


def parse_event_id(text: str, max_rooms: int) -> dict[Room, Position]:
    """The position each room had reached; rooms outside the request are the caller's to
    ignore."""
    positions: dict[Room, Position] = {}
    parts = [p for p in text.strip().split(",") if p]
    if len(parts) > max_rooms:
        raise BadEventId(f"Last-Event-ID names more than {max_rooms} rooms")
    for part in parts:
        name, sep, value = part.strip().rpartition("=")
        epoch, _, seq = value.rpartition(":")
        if (
            not sep
            or not seq.isdigit()
            or len(seq) > 18
            or len(epoch) > MAX_EPOCH_CHARS
            or not (epoch.isalnum() or not epoch)
        ):
            raise BadEventId("Last-Event-ID must look like <room>=<epoch>:<seq>,...")
        try:
            positions[parse_room(name)] = Position(epoch or None, int(seq))
        except BadRoom as exc:
            raise BadEventId(f"Last-Event-ID: {exc}") from None
    return positions
