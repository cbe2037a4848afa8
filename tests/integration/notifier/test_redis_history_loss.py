"""Redis losing the rooms' numbering under live subscribers: flushed, or restarted from an
older snapshot. Every event after the loss reaches the subscriber behind a ``reset``
frame (never dropped as already seen), seqs never go back, and a resume from before the
loss answers ``recovered: false``. Before the reset, an event may come early under the
numbering the notifier predicted from before the loss (handlers/events.py): only events
after the loss, only in the old epoch, past the client's last seq."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from lookout_notifier.adapters.redis_history import RedisRoomHistory
from lookout_notifier.domain.frames import event_frame
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.rooms import Room
from lookout_notifier.ports import Record
from lookout_shared.broker import Broker
from lookout_shared.redis import Keys
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.client import ClientConnection

from .test_sse import sse_events, take
from .test_ws import (
    TIMEOUT,
    Notifier,
    job_event,
    new_stream,
    notifier,
    recv,
    subscribe,
)

__all__ = ["notifier"]  # the fixture

ROOT = Path(__file__).resolve().parents[3]


async def publish(broker: Broker, stream: uuid.UUID, tenant: uuid.UUID, n: int) -> list[str]:
    """Publish n job events of the stream, one at a time; their entity ids."""
    ids = []
    for _ in range(n):
        event = job_event(stream, tenant)
        await broker.publish_envelope(event)
        ids.append(str(event.entity_id))
    return ids


async def frames_of(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(n)]


async def until_reset(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frames before the next reset, and the reset."""
    early = []
    while (frame := await recv(ws)).get("op") != "reset":
        early.append(frame)
    return early, frame


Step = Callable[[], Awaitable[None]]


async def nothing() -> None:
    pass


async def check_loss_is_never_silent(
    notifier: Notifier, broker: Broker, at_seq_4: Step, at_seq_7: Step
) -> None:
    """A subscriber sees seqs 1..7 (the stream's creation, then six events), with
    ``at_seq_4`` and ``at_seq_7`` run when it has seen those; Redis has lost the room's
    numbering after the latter; three more events follow."""
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    async with notifier.connect(tenant) as live:
        old_epoch = (await subscribe(live, room))["epoch"]
        await publish(broker, stream, tenant, 3)
        assert [f["seq"] for f in await frames_of(live, 3)] == [2, 3, 4]
        await at_seq_4()
        await publish(broker, stream, tenant, 3)
        assert [f["seq"] for f in await frames_of(live, 3)] == [5, 6, 7]
        await at_seq_7()

        after = await publish(broker, stream, tenant, 3)
        early, reset = await until_reset(live)
        assert {(f["epoch"], f["seq"]) for f in early} <= {(old_epoch, 8)}
        assert {f["entity_id"] for f in early} <= set(after)
        frames = await frames_of(live, 3)
        new_epoch = reset["epoch"]
        assert reset == {
            "op": "reset",
            "room": room,
            "epoch": new_epoch,
            "seq": 7,
            "recovered": False,
        }
        assert new_epoch != old_epoch
        # Every event after the loss, numbered on from where the client was (the first may
        # come last: a handler that met the restarted Redis failed and was redelivered).
        assert [f["seq"] for f in frames] == [8, 9, 10]
        assert sorted(f["entity_id"] for f in frames) == sorted(after)

    async with notifier.connect(tenant) as back:
        for since in (4, 7):  # from before the loss: it cannot be told what it missed
            ack = await subscribe(back, room, since=since, epoch=old_epoch)
            assert (ack["recovered"], ack["epoch"], ack["seq"]) == (False, new_epoch, 10)
        ack = await subscribe(back, room, since=8, epoch=new_epoch)
        assert (ack["recovered"], ack["seq"]) == (True, 10)
        assert await frames_of(back, 2) == frames[1:]


async def test_flushed_redis_resets_subscribers_instead_of_dropping_events(
    notifier: Notifier, broker: Broker, redis: Redis
) -> None:
    async def flush() -> None:
        await redis.flushdb()

    await check_loss_is_never_silent(notifier, broker, nothing, flush)


async def test_redis_restarted_from_an_older_snapshot_resets_subscribers(
    notifier: Notifier, broker: Broker, redis: Redis
) -> None:
    """SAVE at seq 4, three more events, then Redis stops without saving and starts again
    from that snapshot: the room's counter is back at 4 in the same epoch."""
    config = {**await redis.config_get("dir"), **await redis.config_get("dbfilename")}
    dump = Path(str(config["dir"])) / str(config["dbfilename"])

    async def snapshot() -> None:
        await redis.save()

    async def restart_from_snapshot() -> None:
        with contextlib.suppress(RedisConnectionError):
            await redis.shutdown(nosave=True)
        await asyncio.to_thread(run_stack, "start-redis")

    try:
        await check_loss_is_never_silent(notifier, broker, snapshot, restart_from_snapshot)
    finally:
        dump.unlink(missing_ok=True)  # later starts of this stack's Redis begin empty


def run_stack(command: str) -> None:
    env = {**os.environ, "LOOKOUT_STACK": os.environ.get("LOOKOUT_STACK", "test")}
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), command], env=env, check=True)


async def test_sse_stream_is_reset_and_its_ids_follow_the_new_epoch(
    notifier: Notifier, broker: Broker, redis: Redis
) -> None:
    tenant = uuid.uuid4()
    stream = await new_stream(broker, tenant)
    room = f"stream:{stream}"
    url = f"http://127.0.0.1:{notifier.port}/sse"
    params = {"rooms": room, "token": notifier.token(tenant)}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        async with client.stream("GET", url, params=params) as response:
            events = sse_events(response)
            (ack,) = await take(events, 1)
            old_epoch = ack["data"]["epoch"]
            await publish(broker, stream, tenant, 2)
            before = await take(events, 2)
            assert before[-1]["id"] == f"{room}={old_epoch}:3"
            await redis.flushdb()
            after = await publish(broker, stream, tenant, 2)
            reset, *frames = await take(events, 3)
            if reset["data"].get("op") != "reset":  # the first event, sent early (see above)
                assert reset["id"] == f"{room}={old_epoch}:4"
                reset, *frames = [*frames, *await take(events, 1)]
            new_epoch = reset["data"]["epoch"]
            assert reset["data"] == {
                "op": "reset",
                "room": room,
                "epoch": new_epoch,
                "seq": 3,
                "recovered": False,
            }
            assert [f["data"]["entity_id"] for f in frames] == after
            assert [f["id"] for f in frames] == [f"{room}={new_epoch}:{n}" for n in (4, 5)]
        headers = {"Last-Event-ID": before[-1]["id"]}  # from before the loss
        async with client.stream("GET", url, params=params, headers=headers) as response:
            (ack,) = await take(sse_events(response), 1)
            assert (ack["data"]["recovered"], ack["data"]["epoch"]) == (False, new_epoch)


async def test_event_numbered_before_the_loss_is_not_numbered_again(
    redis: Redis, prefix: str
) -> None:
    """Only the room's hash is lost (evicted): the next event starts a new epoch above the
    seq this instance saw, and a redelivery of an event numbered in the old epoch is not
    given a seq of the new one (its subscribers had it already)."""
    history = RedisRoomHistory(redis, prefix, history_size=10, history_ttl=60)
    room = Room("tenant", uuid.uuid4())
    frame = event_frame(room, ',"type":"t","entity_id":"e","data":{}}')
    first, second = uuid.uuid4(), uuid.uuid4()
    (old,) = await history.record(first, [Record(room, None, frame)], [])
    await redis.delete(Keys(prefix)("notifier", "room", room))
    (new,) = await history.record(second, [Record(room, None, frame)], [])
    assert (new.seq, old.seq) == (2, 1) and new.epoch != old.epoch
    assert await history.record(first, [Record(room, None, frame)], []) == [Position(new.epoch, 0)]
    replay = await history.replay(room, 0, new.epoch)
    assert not replay.recovered  # seq 1 of the new epoch never existed
    replay = await history.replay(room, 1, new.epoch)
    assert replay.recovered and [f.seq for f in replay.frames] == [2]
    assert json.loads(replay.frames[0].text)["epoch"] == new.epoch
