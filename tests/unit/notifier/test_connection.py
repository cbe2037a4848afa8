"""Send queues, back-pressure, replay and tenant filtering, with in-memory twins."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from lookout_notifier import handlers
from lookout_notifier.adapters.memory import MemoryRoomHistory
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.frames import Subscribe
from lookout_notifier.domain.history import Position, StoredFrame, replay_from
from lookout_notifier.domain.hub import Hub
from lookout_notifier.domain.outgoing import Outgoing
from lookout_notifier.domain.rooms import parse_room
from lookout_notifier.ports import Deps
from lookout_shared.contracts import SnapshotJobState
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import Principal, Role

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()


class FakeTransport:
    """Records what is written; ``stalled`` keeps every frame unsent (a client not reading);
    ``held`` is what its buffer holds for the peer besides."""

    def __init__(self, stalled: bool = False, held: int = 0) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed_with: int | None = None
        self.held = held
        self._stalled = stalled
        self._frames = self._bytes = 0

    def unsent(self) -> tuple[int, int]:
        return self._frames, self._bytes + self.held

    def write(self, frame: Outgoing, live: bool) -> None:
        if not self._stalled:
            self.sent.append(json.loads(frame.text))
        elif live:
            self._frames += 1
            self._bytes += len(frame.text)

    def close(self, code: int, reason: str) -> None:
        self.closed_with = code


def principal(tenant: uuid.UUID | None = TENANT, role: Role = "viewer") -> Principal:
    return Principal(uuid.uuid4(), tenant, role, datetime.now(UTC) + timedelta(minutes=5))


def job_event(stream: uuid.UUID, tenant: uuid.UUID = TENANT) -> Envelope:
    return make_envelope(
        "snapshot_job.succeeded",
        SnapshotJobState(stream_id=stream, status="succeeded"),
        producer="tests",
        tenant_id=tenant,
        entity_id=uuid.uuid4(),
        entity_version=1,
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_full_queue_closes_only_the_slow_client_with_1013() -> None:
    history, stream = MemoryRoomHistory(), uuid.uuid4()
    deps = Deps(Hub(), history)
    history.owners[stream] = TENANT
    slow_t, fast_t = FakeTransport(stalled=True), FakeTransport()
    slow, fast = (Connection(principal(), t, 2, 1 << 20) for t in (slow_t, fast_t))
    for conn in (slow, fast):
        deps.hub.connect(conn)
        await handlers.subscribe(conn, Subscribe(parse_room(f"stream:{stream}")), deps)
    await settle()
    for _ in range(6):
        await handlers.handle_event(job_event(stream), deps)
    assert slow.close_code == 1013 and slow_t.closed_with == 1013
    assert not fast.is_closing
    assert [f["seq"] for f in fast_t.sent if "seq" in f and "op" not in f] == [1, 2, 3, 4, 5, 6]


async def test_offer_refuses_beyond_the_bound_without_waiting() -> None:
    conn = Connection(principal(), FakeTransport(stalled=True), 3, 1 << 20)
    assert all(conn.offer("{}") for _ in range(3))
    assert not conn.offer("{}")
    assert conn.close_code == 1013
    assert not conn.offer("{}")  # closing: nothing more is queued


async def test_bytes_held_by_the_transport_count_toward_the_unsent_bound() -> None:
    """A client that stopped reading fills the transport's buffer before the queue: the
    bound counts both, so it is closed while its queue still holds few frames."""
    transport = FakeTransport(stalled=True, held=900)
    conn = Connection(principal(), transport, 256, 1000)
    assert conn.offer("x" * 50) and conn.offer("x" * 50)
    assert not conn.offer("x")
    assert conn.close_code == 1013
    roomy = Connection(principal(), FakeTransport(stalled=True), 256, 1000)
    assert all(roomy.offer("x" * 50) for _ in range(20))  # 1000 bytes queued: still within
    assert not roomy.offer("x") and roomy.close_code == 1013


async def test_since_replays_missed_frames_then_live_ones_in_order() -> None:
    history, stream = MemoryRoomHistory(), uuid.uuid4()
    deps = Deps(Hub(), history)
    for _ in range(3):
        await handlers.handle_event(job_event(stream), deps)
    transport = FakeTransport()
    conn = Connection(principal(), transport, 16, 1 << 20)
    await handlers.handle_client_text(
        conn, json.dumps({"op": "subscribe", "room": f"stream:{stream}", "since": 1}), deps
    )
    await handlers.handle_event(job_event(stream), deps)
    await settle()
    ack, *events = transport.sent
    room = parse_room(f"stream:{stream}")
    assert ack == {
        "op": "subscribed",
        "room": str(room),
        "seq": 3,
        "epoch": history.epochs[room],
        "recovered": True,
    }
    assert [e["seq"] for e in events] == [2, 3, 4]


async def test_trimmed_history_answers_recovered_false() -> None:
    history, stream = MemoryRoomHistory(history_size=2), uuid.uuid4()
    deps = Deps(Hub(), history)
    for _ in range(5):
        await handlers.handle_event(job_event(stream), deps)
    transport = FakeTransport()
    conn = Connection(principal(), transport, 16, 1 << 20)
    await handlers.handle_client_text(
        conn, json.dumps({"op": "subscribe", "room": f"stream:{stream}", "since": 1}), deps
    )
    await settle()
    room = parse_room(f"stream:{stream}")
    epoch = history.epochs[room]
    assert transport.sent == [
        {"op": "subscribed", "room": str(room), "seq": 5, "epoch": epoch, "recovered": False}
    ]


async def test_other_tenants_frames_never_reach_a_connection() -> None:
    history, stream = MemoryRoomHistory(), uuid.uuid4()
    deps = Deps(Hub(), history)
    history.owners[stream] = TENANT
    transport = FakeTransport()
    conn = Connection(principal(TENANT), transport, 16, 1 << 20)
    room = f"stream:{stream}"
    await handlers.handle_client_text(conn, json.dumps({"op": "subscribe", "room": room}), deps)
    # A (contradictory) event of another tenant in the room: filtered before it is queued.
    await handlers.handle_event(job_event(stream, tenant=OTHER), deps)
    await settle()
    assert [f.get("op") for f in transport.sent] == ["subscribed"]
    theirs, unknown = uuid.uuid4(), uuid.uuid4()
    history.owners[theirs] = OTHER
    for name in (f"stream:{theirs}", f"stream:{unknown}", f"tenant:{OTHER}", f"jobs:{unknown}"):
        await handlers.handle_client_text(conn, json.dumps({"op": "subscribe", "room": name}), deps)
    await settle()
    refusals = transport.sent[1:]
    # The same refusal whether the room exists elsewhere or nowhere.
    assert [(f["code"], f["detail"]) for f in refusals] == [
        ("forbidden_room", "room not available")
    ] * 4


async def test_replay_is_filtered_by_tenant_too() -> None:
    history, stream = MemoryRoomHistory(), uuid.uuid4()
    deps = Deps(Hub(), history)
    await handlers.handle_event(job_event(stream, tenant=OTHER), deps)
    await handlers.handle_event(job_event(stream, tenant=TENANT), deps)
    history.owners[stream] = TENANT
    transport = FakeTransport()
    conn = Connection(principal(TENANT), transport, 16, 1 << 20)
    await handlers.handle_client_text(
        conn, json.dumps({"op": "subscribe", "room": f"stream:{stream}", "since": 0}), deps
    )
    await settle()
    assert [f.get("seq") for f in transport.sent[1:]] == [2]


async def test_lost_numbering_resets_subscribers_instead_of_dropping_frames() -> None:
    """The history forgets the room (a flushed Redis) and numbers it from 1 again: the
    subscriber is told, and gets every frame of the new numbering. The first event after
    the loss went out early under the numbering this instance predicted (old epoch, 4);
    it comes again behind the reset."""
    history, stream = MemoryRoomHistory(), uuid.uuid4()
    deps, room = Deps(Hub(), history), parse_room(f"stream:{stream}")
    history.owners[stream] = TENANT
    transport = FakeTransport()
    conn = Connection(principal(), transport, 16, 1 << 20)
    await handlers.handle_event(job_event(stream), deps)
    await handlers.subscribe(conn, Subscribe(room), deps)
    old_epoch = history.epochs[room]
    for _ in range(2):
        await handlers.handle_event(job_event(stream), deps)
    history.lose()
    for _ in range(2):
        await handlers.handle_event(job_event(stream), deps)
    await settle()
    ack, *frames = transport.sent
    assert ack == {"op": "subscribed", "room": str(room), "seq": 1, "epoch": old_epoch}
    new_epoch = history.epochs[room]
    assert new_epoch != old_epoch
    assert [(f.get("op"), f["epoch"], f["seq"]) for f in frames] == [
        (None, old_epoch, 2),
        (None, old_epoch, 3),
        (None, old_epoch, 4),
        ("reset", new_epoch, 0),
        (None, new_epoch, 1),
        (None, new_epoch, 2),
    ]
    assert frames[3]["recovered"] is False
    assert frames[2]["entity_id"] == frames[4]["entity_id"]
    replay = await history.replay(room, 3, old_epoch)  # a resume from before the loss
    assert not replay.recovered and replay.current.epoch == new_epoch


def test_replay_rules() -> None:
    history = [StoredFrame(seq, None, str(seq)) for seq in (3, 4, 5)]
    at = Position("e1", 5)
    assert replay_from(at, history, 2).frames == history and replay_from(at, history, 2).recovered
    assert [f.seq for f in replay_from(at, history, 3).frames] == [4, 5]
    assert replay_from(at, history, 5).recovered and not replay_from(at, history, 5).frames
    assert not replay_from(at, history, 1).recovered  # 2 was trimmed
    assert not replay_from(at, [], 2).recovered  # history expired
    assert not replay_from(at, history, 9).recovered  # counter restarted
    assert replay_from(Position(None, 0), [], 0).recovered
    assert replay_from(at, history, 3, "e1").recovered  # the client's epoch is the room's
    assert not replay_from(at, history, 3, "e0").recovered  # numbering lost since


def test_a_frame_numbered_below_one_already_sent_is_late_not_a_duplicate() -> None:
    """Two instances number a room as each first meets an event, and their queues need not
    agree on the order: seq 3 can reach an instance after seq 4. It is still sent once;
    a second delivery of either is not."""
    room = f"stream:{uuid.uuid4()}"
    transport = FakeTransport()
    conn = Connection(principal(), transport, 64, 1 << 20)
    conn.begin_subscription(room)
    conn.finish_subscription(room, [], [], Position("e1", 2))

    def frame(seq: int) -> Outgoing:
        return Outgoing(json.dumps({"room": room, "seq": seq, "epoch": "e1"}))

    for seq in (4, 3, 4, 3, 5, 7, 6, 6, 2):
        conn.deliver(room, "e1", seq, TENANT, frame(seq))
    assert [f["seq"] for f in transport.sent] == [4, 3, 5, 7, 6]


def test_a_gap_that_never_fills_is_given_up_after_a_bound() -> None:
    room = f"stream:{uuid.uuid4()}"
    transport = FakeTransport()
    conn = Connection(principal(), transport, 1024, 1 << 24)
    conn.begin_subscription(room)
    conn.finish_subscription(room, [], [], Position("e1", 0))
    frames = [Outgoing(json.dumps({"room": room, "seq": s})) for s in range(2, 400)]
    for seq, text in zip(range(2, 400), frames, strict=True):  # seq 1 never comes
        conn.deliver(room, "e1", seq, TENANT, text)
    assert len(transport.sent) == 398
    # Past the bound the gap is given up: a late seq 1 is then taken as already given.
    conn.deliver(room, "e1", 1, TENANT, Outgoing(json.dumps({"room": room, "seq": 1})))
    assert len(transport.sent) == 398
