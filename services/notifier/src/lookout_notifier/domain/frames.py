"""The JSON frames of the WebSocket protocol: parsing client frames, building server ones.

Room numbering (see domain.history): event frames carry ``seq``, growing within the room's
``epoch``, and that ``epoch``. ``subscribed`` acks carry the room's ``epoch`` (once it has
had an event) and the ``seq`` the client is at. A client resumes with ``since`` and that ``epoch``; the
answer is ``recovered: true`` with the missed frames, or ``recovered: false`` (refetch over
REST) when the history no longer covers them or the epoch is not the room's any more.
When a room's numbering was lost while subscribed, the client gets
``{"op":"reset","room":R,"epoch":E,"seq":N,"recovered":false}``: it may have missed
events (refetch), and the room's frames continue after ``seq`` N of the new epoch E.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lookout_shared.envelope import Envelope

from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import BadRoom, Room, parse_room

# Stable error codes clients may switch on.
BAD_FRAME = "bad_frame"
UNKNOWN_OP = "unknown_op"
BAD_ROOM = "bad_room"
FORBIDDEN_ROOM = "forbidden_room"
INVALID_TOKEN = "invalid_token"  # noqa: S105 (an error code)
TOKEN_MISMATCH = "token_mismatch"  # noqa: S105 (an error code)
MAX_TOKEN_CHARS = 8192
MAX_EPOCH_CHARS = 64
# One detail for every refusal, so a refusal never hints whether a room exists.
FORBIDDEN_DETAIL = "room not available"


class FrameError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Subscribe:
    room: Room
    since: int | None = None
    epoch: str | None = None  # the epoch ``since`` counts in, from an ack or a reset


@dataclass(frozen=True)
class Unsubscribe:
    room: Room


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Auth:
    """A fresh token that extends the connection past the first one's expiry."""

    token: str = field(repr=False)


ClientFrame = Subscribe | Unsubscribe | Ping | Auth


def parse_client_frame(text: str) -> ClientFrame:
    try:
        raw = json.loads(text)
    except ValueError:
        raise FrameError(BAD_FRAME, "frame is not valid JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("op"), str):
        raise FrameError(BAD_FRAME, 'frame must be an object with a string "op"')
    op = raw["op"]
    if op == "ping":
        return Ping()
    if op == "auth":
        token = raw.get("token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise FrameError(BAD_FRAME, '"token" must be a non-empty string')
        return Auth(token)
    if op not in ("subscribe", "unsubscribe"):
        raise FrameError(UNKNOWN_OP, f"unknown op {op[:32]!r}")
    try:
        room = parse_room(raw.get("room"))
    except BadRoom as exc:
        raise FrameError(BAD_ROOM, str(exc)) from None
    if op == "unsubscribe":
        return Unsubscribe(room)
    since = raw.get("since")
    if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
        raise FrameError(BAD_FRAME, '"since" must be a non-negative integer')
    epoch = raw.get("epoch")
    if epoch is not None and (
        not isinstance(epoch, str) or not epoch or len(epoch) > MAX_EPOCH_CHARS
    ):
        raise FrameError(BAD_FRAME, '"epoch" must be a non-empty string')
    return Subscribe(room, since, epoch)


def control(op: str, **fields: Any) -> str:
    return json.dumps({"op": op, **fields}, separators=(",", ":"))


def reset(room: str, epoch: str | None, seq: int) -> str:
    """The room's numbering was lost: frames continue after ``seq`` of ``epoch``."""
    return control("reset", room=room, epoch=epoch, seq=seq, recovered=False)


def error(code: str, detail: str, room: str | None = None) -> str:
    extra = {"room": room} if room is not None else {}
    return control("error", code=code, detail=detail, **extra)


@dataclass(frozen=True)
class EventFrame:
    """A server frame with its position left out: ``head + seq + ',"epoch":"E"' + tail`` is
    the JSON text (see :meth:`text`).

    Built once per room and event, so neither the event's data nor the frame is serialised
    again per client, and Redis can splice in the seq and epoch it assigns atomically.
    """

    head: str
    tail: str

    def text(self, seq: int, epoch: str) -> str:
        return f'{self.head}{seq}{_EPOCH_HEAD}{epoch}"{self.tail}'


def event_body(envelope: Envelope) -> str:
    """The part of every room's frame that does not depend on the room (serialised once)."""
    return (
        f',"type":{json.dumps(envelope.type)},"entity_id":"{envelope.entity_id}"'
        f',"data":{json.dumps(envelope.data, separators=(",", ":"))}}}'
    )


def event_frame(room: Room, body: str) -> EventFrame:
    return EventFrame(head=f'{{"room":"{room}","seq":', tail=body)


_ROOM_HEAD = '{"room":"'
_SEQ_HEAD = '","seq":'
_EPOCH_HEAD = ',"epoch":"'


def frame_position(text: str) -> tuple[str, Position] | None:
    """The room and position of an event frame built by :func:`event_frame`; None for the
    rest.

    Read from the fixed head of the text, so a transport that needs it (SSE ids) does not
    parse the JSON again per client.
    """
    if not text.startswith(_ROOM_HEAD):
        return None
    room_end = text.find(_SEQ_HEAD, len(_ROOM_HEAD))
    seq_end = text.find(_EPOCH_HEAD, room_end + len(_SEQ_HEAD))
    epoch_end = text.find('"', seq_end + len(_EPOCH_HEAD))
    if room_end < 0 or seq_end < 0 or epoch_end < 0:
        return None
    seq = int(text[room_end + len(_SEQ_HEAD) : seq_end])
    epoch = text[seq_end + len(_EPOCH_HEAD) : epoch_end]
    return text[len(_ROOM_HEAD) : room_end], Position(epoch, seq)
