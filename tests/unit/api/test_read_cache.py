"""Rules of the read cache without a server: who sees which fields, the breaker, and keys
that never mix tenants or views."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from lookout_api.adapters.read_cache import Breaker, CacheKey, ReadCache, RedisUnavailable
from lookout_api.domain import access, listing
from lookout_shared.redis import Keys, create_redis
from lookout_shared.tokens import Principal, Role
from redis.exceptions import ConnectionError as RedisConnectionError

TENANT = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def principal(role: Role) -> Principal:
    tenant = None if role == "superuser" else TENANT
    return Principal(uuid.uuid4(), tenant, role, datetime(2100, 1, 1, tzinfo=UTC))


def test_viewers_never_receive_a_url_nor_a_failures_detail() -> None:
    assert access.visible_fields(principal("viewer")) == tuple(
        f for f in listing.FIELDS if f not in ("url", "last_error")
    )
    assert "last_error_category" in access.visible_fields(principal("viewer"))
    roles: tuple[Role, ...] = ("operator", "admin", "superuser")
    for role in roles:
        assert access.visible_fields(principal(role)) == listing.FIELDS
    assert access.visible_fields(principal("viewer"), ("id", "url", "name")) == ("id", "name")
    assert access.visible_fields(principal("admin"), ("id", "url")) == ("id", "url")
    job = {
        "id": 1,
        "error": "[tcp] Connection to tcp://cam:554 failed",
        "error_category": "refused",
    }
    assert access.visible(principal("viewer"), job) == {"id": 1, "error_category": "refused"}
    assert access.visible(principal("operator"), job) == job


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_breaker_skips_redis_for_a_while_after_a_failure() -> None:
    clock = Clock()
    breaker = Breaker(2.0, clock)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("refused")

    async def working() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert await breaker.call(working, 1.0) == 7
    with pytest.raises(RedisUnavailable) as failed:
        await breaker.call(failing, 1.0)
    assert not failed.value.skipped and not breaker.closed
    with pytest.raises(RedisUnavailable) as skipped:
        await breaker.call(working, 1.0)
    assert skipped.value.skipped and calls == 2  # not even tried
    clock.now += 2.0
    assert breaker.closed and await breaker.call(working, 1.0) == 7


async def test_a_slow_redis_counts_as_a_failure() -> None:
    breaker = Breaker(2.0)

    async def slow() -> None:
        await asyncio.sleep(1)

    with pytest.raises(RedisUnavailable):
        await breaker.call(slow, 0.01)
    assert not breaker.closed


def test_entry_keys_keep_tenants_and_views_apart() -> None:
    # The client is never used here: building it opens no connection.
    cache = ReadCache(
        create_redis("redis://127.0.0.1:1/0"),
        Keys("p:"),
        Breaker(1),
        enabled=True,
        ttl=30,
        timeout=1,
    )
    other = uuid.uuid4()
    full = access.visible_fields(principal("admin"))
    watch = access.visible_fields(principal("viewer"))
    keys = {
        cache.entry_key(CacheKey("list", TENANT, ("q", full))),
        cache.entry_key(CacheKey("list", other, ("q", full))),
        cache.entry_key(CacheKey("list", None, ("q", full))),
        cache.entry_key(CacheKey("list", TENANT, ("q", watch))),
        cache.entry_key(CacheKey("stream", TENANT, ("q", full))),
    }
    assert len(keys) == 5
    assert cache.entry_key(CacheKey("list", TENANT, ("q", full))).startswith(
        f"p:cache:list:{TENANT}:"
    )
    assert cache.entry_key(CacheKey("list", None, ("q", full))).startswith("p:cache:list:platform:")
