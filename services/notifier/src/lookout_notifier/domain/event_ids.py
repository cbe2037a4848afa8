"""SSE event ids: every room's last seq in one id, so ``Last-Event-ID`` resumes them all.

Format: ``stream:<uuid>=12,tenant:<uuid>=40`` (rooms in the order they were asked for).
"""

from __future__ import annotations

from collections.abc import Mapping

from lookout_notifier.domain.rooms import BadRoom, Room, parse_room


class BadEventId(ValueError):
    pass


def encode_event_id(seqs: Mapping[str, int]) -> str:
    return ",".join(f"{room}={seq}" for room, seq in seqs.items())


def parse_event_id(text: str, max_rooms: int) -> dict[Room, int]:
    """The seq each room had reached; rooms outside the request are the caller's to ignore."""
    seqs: dict[Room, int] = {}
    parts = [p for p in text.strip().split(",") if p]
    if len(parts) > max_rooms:
        raise BadEventId(f"Last-Event-ID names more than {max_rooms} rooms")
    for part in parts:
        name, sep, seq = part.strip().rpartition("=")
        if not sep or not seq.isdigit() or len(seq) > 18:
            raise BadEventId("Last-Event-ID must look like <room>=<seq>,<room>=<seq>")
        try:
            seqs[parse_room(name)] = int(seq)
        except BadRoom as exc:
            raise BadEventId(f"Last-Event-ID: {exc}") from None
    return seqs
