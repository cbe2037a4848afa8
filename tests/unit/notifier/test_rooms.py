"""Room names, and who may join which room and receive its frames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lookout_notifier.domain.rooms import GONE, BadRoom, Room, may_join, may_receive, parse_room
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
