"""Per-tenant shares of a worker's slots: a tenant at its share waits (boundedly), others
do not."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from lookout_snapshot_worker.domain.tenant_slots import TenantSlots
from lookout_snapshot_worker.settings import WorkerSettings
from pydantic import ValidationError

NOISY, QUIET = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(("slots", "share", "limit"), [(8, 0.5, 4), (2, 0.5, 1), (1, 0.5, 1),
                                                       (8, 1.0, 8), (5, 0.5, 2)])  # fmt: skip
def test_the_share_is_a_fraction_of_the_slots_and_at_least_one(
    slots: int, share: float, limit: int
) -> None:
    assert TenantSlots(slots, share).limit == limit


async def test_a_tenant_at_its_share_waits_then_gives_up_while_another_gets_a_slot_at_once() -> (
    None
):
    slots = TenantSlots(8, 0.5)
    for _ in range(4):
        assert await slots.acquire(NOISY, 0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await slots.acquire(NOISY, 0.2)  # over its share: no slot within the wait
    assert loop.time() - started >= 0.2
    assert await slots.acquire(QUIET, 0)  # another tenant is not held up
    assert (slots.running(NOISY), slots.running(QUIET)) == (4, 1)


async def test_a_slot_freed_within_the_wait_goes_to_the_waiting_command() -> None:
    slots = TenantSlots(2, 0.5)
    assert await slots.acquire(NOISY, 0)
    waiting = asyncio.create_task(slots.acquire(NOISY, 5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    slots.release(NOISY)
    assert await waiting
    assert slots.running(NOISY) == 1


async def test_released_and_cancelled_waiters_leave_nothing_behind() -> None:
    slots = TenantSlots(2, 0.5)
    assert await slots.acquire(NOISY, 0)
    waiting = asyncio.create_task(slots.acquire(NOISY, 5))
    await asyncio.sleep(0.01)
    waiting.cancel()  # e.g. the worker shutting down
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slots.release(NOISY)
    assert slots.running(NOISY) == 0
    assert slots.tenants == 0  # no entry kept for every tenant ever seen


def test_a_prefetch_one_tenant_could_fill_is_refused() -> None:
    with pytest.raises(ValidationError, match="LOOKOUT_WORKER_PREFETCH"):
        WorkerSettings(worker_concurrency=8, worker_prefetch=4, tenant_share=0.5)
    with pytest.raises(ValidationError, match="LOOKOUT_PROBE_PREFETCH"):
        WorkerSettings(probe_concurrency=2, probe_prefetch=1)
    WorkerSettings(worker_concurrency=8, worker_prefetch=4, tenant_share=1)  # no shares
    WorkerSettings(worker_concurrency=1, worker_prefetch=1)  # one slot: nothing to share
