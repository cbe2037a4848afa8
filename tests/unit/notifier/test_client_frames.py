"""What a client's frames do: a subscription waits for its stream's owner, and a fresh
token extends the connection (which closes when its token expires)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from lookout_notifier import handlers
from lookout_notifier.adapters.memory import MemoryRoomHistory
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.hub import Hub
from lookout_notifier.domain.outgoing import Outgoing
from lookout_notifier.domain.rooms import GONE, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.ports import Deps
from lookout_shared.contracts import StreamDeleted, StreamState
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import Principal, TokenCodec

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()
CODEC = TokenCodec("unit-test-secret-unit-test-secret", "lookout", "lookout")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def unsent(self) -> tuple[int, int]:
        return 0, 0

    def write(self, frame: Outgoing, live: bool) -> None:
        self.sent.append(json.loads(frame.text))

    def close(self, code: int, reason: str) -> None:
        pass


def stream_event(kind: str, stream: uuid.UUID, tenant: uuid.UUID = TENANT) -> Envelope:
    payload = (
        StreamDeleted()
        if kind == "stream.deleted"
        else StreamState(name="cam", kind="rtsp", status="pending", enabled=True)
    )
    return make_envelope(
        kind, payload, producer="tests", tenant_id=tenant, entity_id=stream, entity_version=1
    )


def viewer(tenant: uuid.UUID = TENANT, user: uuid.UUID | None = None) -> Principal:
    return Principal(
        user or uuid.uuid4(), tenant, "viewer", datetime.now(UTC) + timedelta(minutes=5)
    )


# Stream rooms: only once the stream is known to be in the tenant ---------------------------


async def test_subscription_waits_for_the_creation_event_in_flight() -> None:
    deps = Deps(Hub(), MemoryRoomHistory(), owner_wait_seconds=5)
    stream = uuid.uuid4()
    asking = asyncio.create_task(handlers.may_subscribe(viewer(), Room("stream", stream), deps))
    await asyncio.sleep(0.01)
    assert not asking.done()
    await handlers.handle_event(stream_event("stream.created", stream), deps)
    assert await asyncio.wait_for(asking, 1)


async def test_unknown_and_foreign_streams_are_refused() -> None:
    deps = Deps(Hub(), MemoryRoomHistory(), owner_wait_seconds=0.05)
    theirs = uuid.uuid4()
    await handlers.handle_event(stream_event("stream.created", theirs, OTHER), deps)
    assert not await handlers.may_subscribe(viewer(), Room("stream", uuid.uuid4()), deps)
    assert not await handlers.may_subscribe(viewer(), Room("stream", theirs), deps)
    assert await handlers.may_subscribe(viewer(OTHER), Room("stream", theirs), deps)


async def test_owner_kept_until_deleted_and_not_revived_by_hints() -> None:
    history = MemoryRoomHistory()
    stream = uuid.uuid4()
    await history.record(uuid.uuid4(), [], [OwnerFact(stream, TENANT, "hint")])
    await history.record(uuid.uuid4(), [], [OwnerFact(stream, OTHER, "hint")])
    assert await history.owner_of(stream) == TENANT  # a hint never overrides
    await history.record(uuid.uuid4(), [], [OwnerFact(stream, TENANT, "forget")])
    await history.record(uuid.uuid4(), [], [OwnerFact(stream, TENANT, "keep")])
    assert await history.owner_of(stream) == GONE


# Re-authentication ---------------------------------------------------------------------------


async def test_fresh_token_of_the_same_user_extends_the_connection() -> None:
    user = uuid.uuid4()
    old = CODEC.verify(CODEC.issue(user, TENANT, "viewer", timedelta(seconds=1)))
    transport = Recorder()
    conn = Connection(old, transport, 8, 1 << 20)
    conn.expire_at(old.expires_at)
    deps = Deps(Hub(), MemoryRoomHistory())
    for token in (
        "garbage",
        CODEC.issue(uuid.uuid4(), TENANT, "viewer", timedelta(minutes=5)),  # someone else
        CODEC.issue(user, TENANT, "admin", timedelta(minutes=5)),  # another role
        CODEC.issue(user, TENANT, "viewer", timedelta(minutes=5)),
    ):
        await handlers.handle_client_text(
            conn, json.dumps({"op": "auth", "token": token}), deps, CODEC
        )
    await asyncio.sleep(1.2)  # past the first token's expiry
    assert not conn.is_closing
    codes = [f.get("code", f["op"]) for f in transport.sent]
    assert codes == ["invalid_token", "token_mismatch", "token_mismatch", "authenticated"]
    assert conn.principal.expires_at > old.expires_at


async def test_expiry_closes_with_1008() -> None:
    conn = Connection(viewer(), Recorder(), 8, 1 << 20)
    conn.expire_at(datetime.now(UTC))
    await asyncio.sleep(0.01)
    assert conn.close_code == 1008
