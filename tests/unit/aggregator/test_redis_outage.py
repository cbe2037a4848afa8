"""Applies that meet an unreachable Redis wait for it instead of failing their events."""

from __future__ import annotations

import asyncio

import pytest
from lookout_count_aggregator.adapters.redis_outage import RedisOutage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class FlakyRedis:
    """Stands in for the Lua apply: unreachable for the first ``down`` calls."""

    def __init__(self, outage: RedisOutage, down: int) -> None:
        self.outage = outage
        self.down = down
        self.calls = 0
        self.probing = 0
        self.most_probing = 0

    async def apply(self) -> str:
        self.calls += 1
        waiting = self.outage.down  # a call made while the outage is known: a probe
        self.probing += waiting
        self.most_probing = max(self.most_probing, self.probing)
        try:
            await asyncio.sleep(0.001)
            if self.calls <= self.down:
                raise RedisConnectionError("Connection refused")
            return "applied"
        finally:
            self.probing -= waiting


async def test_an_unreachable_redis_holds_applies_until_it_answers_never_failing_them() -> None:
    recovered: list[bool] = []
    outage = RedisOutage(max_backoff_seconds=0.05, on_recovered=lambda: recovered.append(True))
    redis = FlakyRedis(outage, down=30)
    results = await asyncio.gather(*(outage.call(redis.apply) for _ in range(20)))
    assert results == ["applied"] * 20
    assert recovered == [True]
    assert not outage.down
    # Once the outage was known, Redis was probed by one apply at a time, never a burst.
    assert redis.most_probing == 1


async def test_a_script_error_is_not_an_outage() -> None:
    outage = RedisOutage(max_backoff_seconds=0.05)

    async def broken() -> str:
        raise ResponseError("ERR bad script")

    with pytest.raises(ResponseError):
        await outage.call(broken)
    assert not outage.down
