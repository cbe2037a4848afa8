"""The in-memory twins of the ports behave as the real adapters do."""

from __future__ import annotations

import uuid

from lookout_notifier.adapters.memory import MemoryConnectionSlots


async def test_slots_cap_each_user_and_come_back_on_release() -> None:
    slots, user = MemoryConnectionSlots(), uuid.uuid4()
    conns = [uuid.uuid4() for _ in range(3)]
    assert [await slots.acquire(user, c, 2) for c in conns] == [True, True, False]
    assert await slots.acquire(uuid.uuid4(), conns[2], 2)  # another user has their own
    await slots.release(user, conns[0])
    assert await slots.acquire(user, conns[2], 2)
