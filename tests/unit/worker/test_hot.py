"""The rules of sharing hot streams out (domain/hot.py), without any server."""

from __future__ import annotations

import uuid

from lookout_snapshot_worker.domain.hot import (
    FRAME_HEADER,
    HotStream,
    fair_order,
    pack_frame,
    plan,
    target,
)


def streams(tenant: uuid.UUID, n: int) -> list[HotStream]:
    return [HotStream(uuid.uuid4(), tenant, f"rtsp://cam{i}", "keyframes") for i in range(n)]


def test_each_worker_targets_an_even_share_rounded_up_and_capped() -> None:
    assert target(10, 3, 100) == 4  # 4 + 4 + 2: the shares cover every stream
    assert target(10, 0, 100) == 10  # not yet counted itself: all of them
    assert target(500, 2, 100) == 100


def test_fair_order_takes_one_stream_of_each_tenant_in_turn() -> None:
    big, small = uuid.uuid4(), uuid.uuid4()
    order = fair_order(streams(big, 5) + streams(small, 2))
    assert [s.tenant_id for s in order[:4]].count(small) == 2


def test_a_worker_over_its_share_releases_the_excess_and_takes_nothing() -> None:
    hot = streams(uuid.uuid4(), 4)
    todo = plan([s.id for s in hot], hot, goal=2)
    assert len(todo.release) == 2 and todo.room == 0


def test_streams_no_longer_hot_are_released_and_free_ones_tried_up_to_the_share() -> None:
    hot = streams(uuid.uuid4(), 4)
    gone = uuid.uuid4()
    todo = plan([gone, hot[0].id], hot, goal=3)
    assert todo.release == [gone]
    assert todo.room == 2
    assert hot[0] not in todo.candidates and len(todo.candidates) == 3


def test_a_frame_record_carries_its_size_and_jpeg() -> None:
    record = pack_frame(12.5, 1280, 720, b"\xff\xd8jpeg")
    assert FRAME_HEADER.unpack(record[: FRAME_HEADER.size]) == (12.5, 1280, 720, 6)
    assert record[FRAME_HEADER.size :] == b"\xff\xd8jpeg"
