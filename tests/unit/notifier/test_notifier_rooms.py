"""Room names, who may join which room, origins, where tokens travel, client frames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lookout_notifier.domain import frames
from lookout_notifier.domain.policy import origin_allowed
from lookout_notifier.domain.rooms import GONE, BadRoom, Room, may_join, may_receive, parse_room
from lookout_notifier.entrypoints.auth import credentials
from lookout_shared.tokens import Principal, Role

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()


def principal(role: Role = "viewer", tenant: uuid.UUID | None = TENANT) -> Principal:
    return Principal(uuid.uuid4(), tenant, role, datetime.now(UTC) + timedelta(minutes=5))


@pytest.mark.parametrize("kind", ["stream", "tenant", "user", "jobs"])
def test_parse_room_round_trips(kind: str) -> None:
    ident = uuid.uuid4()
    room = parse_room(f"{kind}:{ident}")
    assert room == Room(kind, ident)  # type: ignore[arg-type]
    assert str(room) == f"{kind}:{ident}"


@pytest.mark.parametrize(
    "name",
    ["", "stream", "stream:", "stream:nope", "camera:" + str(uuid.uuid4()), 42, None, "x" * 100],
)
def test_parse_room_refuses_malformed_names(name: object) -> None:
    with pytest.raises(BadRoom):
        parse_room(name)


def test_tenant_room_only_for_own_tenant() -> None:
    viewer = principal()
    assert may_join(viewer, Room("tenant", TENANT), None)
    assert not may_join(viewer, Room("tenant", OTHER), None)


def test_superuser_may_join_any_tenant_room() -> None:
    root = principal("superuser", None)
    assert may_join(root, Room("tenant", OTHER), None)
    assert may_join(root, Room("stream", uuid.uuid4()), OTHER)


def test_user_room_only_for_self() -> None:
    me = principal("admin")
    assert may_join(me, Room("user", me.user_id), None)
    assert not may_join(me, Room("user", uuid.uuid4()), None)
    assert not may_join(principal("superuser", None), Room("user", me.user_id), None)


@pytest.mark.parametrize("kind", ["stream", "jobs"])
def test_owned_rooms_follow_the_known_owner(kind: str) -> None:
    viewer = principal()
    room = Room(kind, uuid.uuid4())  # type: ignore[arg-type]
    assert may_join(viewer, room, TENANT)
    assert not may_join(viewer, room, OTHER)
    assert not may_join(viewer, room, None)  # nobody has named it: deny by default
    assert not may_join(viewer, room, GONE)  # deleted
    assert may_join(principal("superuser", None), room, None)


def test_frames_reach_only_their_tenant_or_a_superuser() -> None:
    assert may_receive(principal(), TENANT)
    assert not may_receive(principal(), OTHER)
    assert not may_receive(principal(), None)
    assert may_receive(principal("superuser", None), OTHER)


def test_origin_allow_list() -> None:
    allowed = ["http://localhost:8000"]
    assert origin_allowed(None, allowed)
    assert origin_allowed("http://localhost:8000", allowed)
    assert not origin_allowed("http://evil.example", allowed)
    assert not origin_allowed("null", allowed)


def test_token_from_header_then_subprotocol_then_query() -> None:
    header = credentials({"authorization": "Bearer abc"}, [], {"token": "q"})
    assert (header.token, header.subprotocol) == ("abc", None)
    sub = credentials({}, ["bearer", "tok.en"], {"token": "q"})
    assert (sub.token, sub.subprotocol) == ("tok.en", "bearer")
    assert credentials({}, [], {"token": "q"}).token == "q"
    assert credentials({"authorization": "Basic xyz"}, [], {}).token is None
    assert credentials({}, ["bearer"], {}).token is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", frames.BAD_FRAME),
        ("[1, 2]", frames.BAD_FRAME),
        ('{"room": "x"}', frames.BAD_FRAME),
        ('{"op": "shout"}', frames.UNKNOWN_OP),
        ('{"op": "subscribe", "room": "nope:1"}', frames.BAD_ROOM),
        (
            '{"op": "subscribe", "room": "stream:' + str(TENANT) + '", "since": -1}',
            frames.BAD_FRAME,
        ),
        (
            '{"op": "subscribe", "room": "stream:' + str(TENANT) + '", "since": true}',
            frames.BAD_FRAME,
        ),
    ],
)
def test_bad_client_frames_get_stable_codes(text: str, code: str) -> None:
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_client_frame(text)
    assert caught.value.code == code


def test_good_client_frames() -> None:
    room = f"stream:{TENANT}"
    assert frames.parse_client_frame('{"op":"ping"}') == frames.Ping()
    assert frames.parse_client_frame(
        f'{{"op":"subscribe","room":"{room}","since":3}}'
    ) == frames.Subscribe(parse_room(room), 3)
    assert frames.parse_client_frame(
        f'{{"op":"unsubscribe","room":"{room}"}}'
    ) == frames.Unsubscribe(parse_room(room))
