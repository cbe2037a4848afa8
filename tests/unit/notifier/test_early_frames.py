"""Early frames (handlers/events.py): a frame goes out before its numbering returns when this
instance can predict it, and a prediction that turns out wrong is taken back and the frame
sent again at its actual position, never dropped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from lookout_notifier import handlers
from lookout_notifier.adapters.memory import MemoryRoomHistory
from lookout_notifier.domain import frames
from lookout_notifier.domain.connection import Connection
from lookout_notifier.domain.frames import Subscribe
from lookout_notifier.domain.history import SHARED_QUIET_SECONDS, KnownPositions, Position
from lookout_notifier.domain.hub import Hub
from lookout_notifier.domain.rooms import parse_room
from lookout_notifier.domain.routing import OwnerFact, rooms_for
from lookout_notifier.ports import Deps, Record
from lookout_shared.envelope import Envelope

from tests.unit.notifier.test_connection import TENANT, FakeTransport, job_event, principal


class GatedHistory(MemoryRoomHistory):
    """Numbering that waits while ``gate`` is set, fails ``failures`` times, and answers seq 0
    for the event ``left``."""

    def __init__(self, instance_of: MemoryRoomHistory | None = None) -> None:
        super().__init__(instance_of=instance_of)
        self.gate: asyncio.Event | None = None
        self.failures = 0
        self.left: uuid.UUID | None = None  # this event was numbered in an epoch since left

    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[Position]:
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis went away")
        if event_id == self.left:  # as the Redis script answers, and not a fresh numbering
            self.known.pause()
            return [Position(self.epochs.get(r.room), 0) for r in records]
        return await super().record(event_id, records, owners)


def watched_stream() -> tuple[GatedHistory, uuid.UUID, Deps]:
    """A stream of TENANT whose owner the history knows, and the handlers' deps over it."""
    history, stream = GatedHistory(), uuid.uuid4()
    history.owners[stream] = TENANT
    return history, stream, Deps(Hub(), history)


async def subscribed(deps: Deps, stream: uuid.UUID) -> FakeTransport:
    transport = FakeTransport()
    conn = Connection(principal(), transport, 64, 1 << 20)
    deps.hub.connect(conn)
    await handlers.subscribe(conn, Subscribe(parse_room(f"stream:{stream}")), deps)
    return transport


def seqs(transport: FakeTransport) -> list[tuple[object, object]]:
    """(seq, entity id) of the event frames sent, in order."""
    return [(f["seq"], f["entity_id"]) for f in transport.sent if f.get("type")]


async def test_a_frame_goes_out_before_its_numbering_once_the_room_is_known() -> None:
    history, stream, deps = watched_stream()
    transport = await subscribed(deps, stream)
    first, second = job_event(stream), job_event(stream)
    history.gate = asyncio.Event()
    numbering = asyncio.create_task(handlers.handle_event(first, deps))
    await asyncio.sleep(0.01)
    assert seqs(transport) == []  # nothing known of the room: the numbering decides
    history.gate.set()
    await numbering
    history.gate = asyncio.Event()
    numbering = asyncio.create_task(handlers.handle_event(second, deps))
    await asyncio.sleep(0.01)
    assert seqs(transport) == [(1, str(first.entity_id)), (2, str(second.entity_id))]
    history.gate.set()
    await numbering  # confirmed: not sent twice
    assert seqs(transport) == [(1, str(first.entity_id)), (2, str(second.entity_id))]


async def test_a_wrong_prediction_is_taken_back_and_the_late_event_still_arrives() -> None:
    """Another instance numbers an event of the room first (its queue had it earlier): this
    one predicted that seq for the event it had, so the frame comes again at its actual
    seq, and the other event, reaching this instance later, is not dropped as seen."""
    mine, stream = MemoryRoomHistory(), uuid.uuid4()
    theirs = MemoryRoomHistory(instance_of=mine)
    mine.owners[stream] = TENANT
    deps = Deps(Hub(), mine)
    transport = await subscribed(deps, stream)
    a, b, c = job_event(stream), job_event(stream), job_event(stream)
    await handlers.handle_event(a, deps)  # seq 1, numbered here
    await theirs.record(c.id, [_record(c)], [])  # seq 2 goes to c, elsewhere
    await handlers.handle_event(b, deps)  # predicted 2, numbered 3
    await handlers.handle_event(c, deps)  # predicted 4, numbered already: 2
    d = job_event(stream)
    assert mine.predict(parse_room(f"stream:{stream}")) is None  # c said: not alone
    await handlers.handle_event(d, deps)
    ids = [str(e.entity_id) for e in (a, b, c, d)]
    # Each wrong early frame is followed by a reset to the event's actual position (the seq
    # the client holds may be another event's), then the event itself.
    assert [(f.get("op") or f["entity_id"], f["seq"]) for f in transport.sent[1:]] == [
        (ids[0], 1),
        (ids[1], 2),
        ("reset", 2),
        (ids[1], 3),
        (ids[2], 4),
        ("reset", 1),
        (ids[2], 2),
        (ids[3], 4),  # 4 was taken back: not dropped as a duplicate
    ]


async def test_a_failed_numbering_takes_the_early_frame_back_and_the_redelivery_sends_it() -> None:
    history, stream, deps = watched_stream()
    transport = await subscribed(deps, stream)
    first, second = job_event(stream), job_event(stream)
    await handlers.handle_event(first, deps)
    history.failures = 1
    with pytest.raises(ConnectionError):
        await handlers.handle_event(second, deps)
    await handlers.handle_event(second, deps)  # the broker's redelivery
    assert seqs(transport)[1:] == [(2, str(second.entity_id))] * 2
    third = job_event(stream)
    await handlers.handle_event(third, deps)
    assert seqs(transport)[-1] == (3, str(third.entity_id))


async def test_an_early_frame_held_for_a_subscription_being_set_up_is_dropped_if_wrong() -> None:
    history, stream, deps = watched_stream()
    await subscribed(deps, stream)  # a member, so the room's frames are predicted
    await handlers.handle_event(job_event(stream), deps)
    late = FakeTransport()
    conn = Connection(principal(), late, 64, 1 << 20)
    deps.hub.connect(conn)
    deps.hub.join(f"stream:{stream}", conn)  # its replay is being read: frames are held
    history.failures = 1
    with pytest.raises(ConnectionError):
        await handlers.handle_event(job_event(stream), deps)
    assert conn.held_seqs(f"stream:{stream}", history.epochs[parse_room(f"stream:{stream}")]) == []


async def test_an_event_numbered_in_a_left_epoch_is_taken_back_and_not_sent_again() -> None:
    """A redelivery of an event numbered in an epoch the room has left comes back with seq 0:
    the client that got it early is reset to where the room was, and the next event is
    not dropped as a duplicate of the early frame's seq."""
    history, stream, deps = watched_stream()
    transport = await subscribed(deps, stream)
    await handlers.handle_event(job_event(stream), deps)
    old = job_event(stream)
    history.left = old.id  # numbered in an earlier epoch
    await handlers.handle_event(old, deps)
    after = job_event(stream)
    await handlers.handle_event(after, deps)
    assert [(f.get("op") or f["entity_id"], f["seq"]) for f in transport.sent[2:]] == [
        (str(old.entity_id), 2),
        ("reset", 1),
        (str(after.entity_id), 2),
    ]


def test_nothing_is_predicted_for_a_while_after_another_instance_numbered() -> None:
    now = [0.0]
    known = KnownPositions(10, clock=lambda: now[0])
    known.numbered("r", Position("e", 1), fresh=True)
    assert known.predict("r") == Position("e", 2)
    known.saw("r", Position("e", 3))  # read: others numbered past what this one did
    assert known.predict("r") is None
    known.numbered("r", Position("e", 4), fresh=True)
    assert known.predict("r") == Position("e", 5)
    known.numbered("r", Position("e", 5), fresh=False)
    assert known.predict("r") is None
    now[0] += SHARED_QUIET_SECONDS + 1
    assert known.predict("r") == Position("e", 6)


def _record(event: Envelope) -> Record:
    """The event's frame in its stream's room, as handle_event builds it."""
    delivery = rooms_for(event)[0]
    frame = frames.event_frame(delivery.room, frames.event_body(event))
    return Record(delivery.room, delivery.tenant_id, frame)
