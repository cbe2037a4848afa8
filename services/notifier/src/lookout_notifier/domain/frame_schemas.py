"""The WebSocket (and SSE) frames as JSON Schema, for client authors.

The notifier builds and parses frames by hand (domain/frames.py: one serialisation per
event, spliced positions); these models only describe them. ``lookout-notifier schema``
prints :func:`document`, and ``docs/schemas/notifier-frames.schema.json`` is its copy
(a test keeps the two equal and checks real frames against it). Event frames carry an
event's payload from :data:`lookout_shared.contracts.EVENTS` under ``data``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, Any, Literal

from lookout_shared.contracts import EVENTS, Payload
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from lookout_notifier.domain import frames

ROOM = Field(
    description="<kind>:<uuid>, kind one of stream, tenant, user, jobs",
    examples=["stream:0b9f5f7e-4c5e-4c39-9f7e-2f1a6f3c1d2e"],
)
ERROR_CODES = Literal[
    "bad_frame", "unknown_op", "bad_room", "forbidden_room", "invalid_token", "token_mismatch"
]
assert set(ERROR_CODES.__args__) == {  # type: ignore[attr-defined]
    frames.BAD_FRAME,
    frames.UNKNOWN_OP,
    frames.BAD_ROOM,
    frames.FORBIDDEN_ROOM,
    frames.INVALID_TOKEN,
    frames.TOKEN_MISMATCH,
}


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Client → notifier -------------------------------------------------------------------------


class Subscribe(Frame):
    op: Literal["subscribe"]
    room: str = ROOM
    since: int | None = Field(None, ge=0, description="the last seq received: replay after it")
    epoch: str | None = Field(None, description="the epoch ``since`` counts in")


class Unsubscribe(Frame):
    op: Literal["unsubscribe"]
    room: str = ROOM


class Ping(Frame):
    op: Literal["ping"]


class Auth(Frame):
    """A fresh token of the same identity: the connection outlives the first one."""

    op: Literal["auth"]
    token: str = Field(min_length=1, max_length=frames.MAX_TOKEN_CHARS)


# Notifier → client -------------------------------------------------------------------------


class Subscribed(Frame):
    op: Literal["subscribed"]
    room: str = ROOM
    seq: int = Field(description="the client is at this seq of the room")
    epoch: str | None = Field(None, description="the room's epoch, once it has had an event")
    recovered: bool | None = Field(
        None, description="with since: true = missed frames follow; false = refetch over REST"
    )


class Unsubscribed(Frame):
    op: Literal["unsubscribed"]
    room: str = ROOM


class Pong(Frame):
    op: Literal["pong"]


class Authenticated(Frame):
    op: Literal["authenticated"]
    expires_at: int = Field(description="the new token's expiry, Unix seconds")


class Reset(Frame):
    """The room's numbering was lost: events may be missed (refetch); frames continue
    after ``seq`` of ``epoch``."""

    op: Literal["reset"]
    room: str = ROOM
    epoch: str | None
    seq: int
    recovered: Literal[False]


class Error(Frame):
    op: Literal["error"]
    code: ERROR_CODES
    detail: str
    room: str | None = None


class Close(Frame):
    """SSE only: the last message before the server ends the stream."""

    op: Literal["close"]
    code: int
    reason: str


def _event_frames() -> list[type[BaseModel]]:
    """One frame model per payload model, its ``type`` the event types carrying it."""
    types: dict[type[Payload], list[str]] = defaultdict(list)
    for event_type, payload in EVENTS.items():
        types[payload].append(event_type)
    return [
        create_model(
            f"{payload.__name__}Event",
            __base__=Frame,
            room=(str, ROOM),
            seq=(int, Field(description="grows by one per event within the room's epoch")),
            epoch=(str, ...),
            type=(Literal[tuple(names)], ...),  # type: ignore[arg-type]  # built from EVENTS
            entity_id=(uuid.UUID, ...),
            data=(payload, ...),
        )
        for payload, names in types.items()
    ]


ClientFrame = Annotated[Subscribe | Unsubscribe | Ping | Auth, Field(discriminator="op")]
ControlFrame = Annotated[
    Subscribed | Unsubscribed | Pong | Authenticated | Reset | Error | Close,
    Field(discriminator="op"),
]


def document() -> dict[str, Any]:
    """One JSON Schema (2020-12): a frame is a client frame or a server frame."""
    server: Any = ControlFrame
    for event in _event_frames():
        server = server | event
    client = TypeAdapter(ClientFrame).json_schema(ref_template="#/$defs/{model}")
    served = TypeAdapter(server).json_schema(ref_template="#/$defs/{model}")
    defs = {**client.pop("$defs"), **served.pop("$defs")}
    defs["ClientFrame"], defs["ServerFrame"] = client, served
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lookout.example/schemas/notifier-frames.schema.json",
        "title": "Lookout notifier frames",
        "description": "JSON text frames of /ws (and data of /sse): ClientFrame is what a "
        "client sends, ServerFrame what it receives.",
        "oneOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
        "$defs": defs,
    }
