"""One Redis-failure policy for every api caller: a failure seen by one Redis port opens the
one breaker, and every other port then skips Redis (RedisUnavailable, skipped) instead of
paying its own timeout. Redis here is a closed loopback port: connecting fails at once."""

from __future__ import annotations

import uuid
from typing import cast

import asyncpg
import pytest
from lookout_api.adapters.breaker import Breaker
from lookout_api.adapters.connections import Connections
from lookout_api.adapters.redis_reads import RedisCounts, RedisHotFrames, RedisRateCounters
from lookout_api.ports import RedisUnavailable
from lookout_shared.redis import Keys, create_redis


async def test_a_rate_limit_failure_makes_counts_and_hot_frames_skip_redis() -> None:
    redis = create_redis("redis://127.0.0.1:1/0")
    connections = Connections(cast(asyncpg.Pool, None), redis)
    keys, breaker = Keys("test"), Breaker(60.0)
    rates = RedisRateCounters(connections, keys, breaker)
    counts = RedisCounts(connections, keys, breaker, 0.5)
    frames = RedisHotFrames(connections, keys, breaker)
    try:
        with pytest.raises(RedisUnavailable) as failed:
            await rates.hit(("ratelimit", "login", "ip", "127.0.0.1"), 60)
        assert not failed.value.skipped and not breaker.closed
        with pytest.raises(RedisUnavailable) as skipped:
            await counts.counts(uuid.uuid4())
        assert skipped.value.skipped
        with pytest.raises(RedisUnavailable) as skipped:
            await frames.latest(uuid.uuid4())
        assert skipped.value.skipped
    finally:
        await redis.aclose()
