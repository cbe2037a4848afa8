"""The read cache's in-process copies across api processes: two apps, each with its own
Redis connections and its own copies, on one Postgres and one Redis key space. A write
through one makes the other's copies of the stream and of its tenant's list stale within
one invalidation message (measured under concurrent reads), the aggregator's count moves
drop list pages, and a stalled Redis turns the copies off within heartbeat + timeout."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from lookout_api.adapters.local_copies import LocalCopies
from lookout_api.bootstrap import Deps
from lookout_api.entrypoints.http import create_app
from lookout_shared.count_keys import scope_key
from lookout_shared.redis import Keys, create_redis

from .conftest import Api
from .test_api_redis_slow import redis_stalled

# The documented bound for a write through another process: one invalidation message on
# loopback (a few ms); generous here, since the machine running the tests may be loaded.
STALE_BOUND_SECONDS = 0.5


@contextlib.asynccontextmanager
async def second_api(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, Deps]]:
    app = create_app(api.settings)
    async with app.router.lifespan_context(app):
        deps: Deps = app.state.deps
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, deps


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Poll ``condition`` until it holds (TimeoutError after ``seconds``)."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def tracking_up(deps: Deps) -> LocalCopies:
    assert deps.cache_tracking is not None
    async with asyncio.timeout(10):
        await deps.cache_tracking.connected.wait()
    return deps.cache.local


async def copied(copies: LocalCopies, read: Any, kind: str) -> None:
    """Read until the entry is served from ``copies``."""
    async with asyncio.timeout(10):
        while copies.count(kind) == 0:
            await read()
            await asyncio.sleep(0.001)


async def test_a_write_through_one_process_is_seen_by_the_other_within_the_bound(
    api: Api,
) -> None:
    _, operator = await api.tenant_user("operator")
    stream = await api.stream(operator, name="before")
    path = f"/api/v1/streams/{stream['id']}"
    async with second_api(api) as (other, deps):
        copies = await tracking_up(deps)
        await copied(copies, lambda: other.get(path, headers=operator), "stream")
        await copied(copies, lambda: other.get("/api/v1/streams", headers=operator), "list")

        names: dict[str, str] = {}
        seen_at: dict[str, float] = {}
        stop = asyncio.Event()
        written_at = 0.0

        async def reader(what: str, url: str, name_of: Any) -> None:
            while not stop.is_set():
                r = await other.get(url, headers=operator)
                assert r.status_code == 200, r.text
                names[what] = name_of(r.json())
                if written_at and names[what] == "after" and what not in seen_at:
                    seen_at[what] = time.perf_counter()
                await asyncio.sleep(0.001)  # an in-process hit never yields by itself

        readers = [
            asyncio.create_task(reader(f"stream{i}", path, lambda b: b["name"])) for i in range(4)
        ] + [
            asyncio.create_task(
                reader(f"list{i}", "/api/v1/streams", lambda b: b["items"][0]["name"])
            )
            for i in range(4)
        ]
        try:
            await asyncio.sleep(0.2)
            assert set(names.values()) == {"before"}  # served from the copies meanwhile
            r = await api.client.patch(path, json={"name": "after"}, headers=operator)
            assert r.status_code == 200
            written_at = time.perf_counter()
            await until(lambda: len(seen_at) == len(readers), 10)
        finally:
            stop.set()
            await asyncio.gather(*readers)
    stale = max(seen_at.values()) - written_at
    print(f"another process served the old entry for at most {stale * 1000:.1f} ms")
    assert stale < STALE_BOUND_SECONDS


async def test_a_count_move_drops_the_other_process_list_pages(api: Api) -> None:
    tenant, operator = await api.tenant_user("operator")
    await api.stream(operator)
    async with second_api(api) as (other, deps):
        copies = await tracking_up(deps)
        await copied(copies, lambda: other.get("/api/v1/streams", headers=operator), "list")
        # The aggregator's write: a count field moves with no generation bump.
        redis = create_redis(api.settings.redis_url.get_secret_value())
        try:
            key = scope_key(Keys(api.settings.redis_prefix), tenant)  # type: ignore[arg-type]
            await redis.hincrby(key, "streams_total", 1)
        finally:
            await redis.aclose()
        await until(lambda: copies.count("list") == 0, STALE_BOUND_SECONDS)


@pytest.mark.api_settings(cache_local_heartbeat_seconds=0.2, cache_local_timeout_seconds=0.3)
async def test_copies_are_not_served_while_the_invalidation_channel_is_stalled(
    api: Api,
) -> None:
    _, operator = await api.tenant_user("operator")
    stream = await api.stream(operator)
    path = f"/api/v1/streams/{stream['id']}"
    deps: Deps = api.app.state.deps
    copies = await tracking_up(deps)
    await copied(copies, lambda: api.client.get(path, headers=operator), "stream")
    async with redis_stalled(api.settings, 2.0):
        stalled_at = time.perf_counter()
        await until(lambda: not copies.live, 5)
        off_after = time.perf_counter() - stalled_at
        assert copies.count() == 0
    print(f"copies off {off_after * 1000:.0f} ms into the stall")
    assert off_after < 0.2 + 0.3 + 0.3  # heartbeat + timeout, and some slack
    await tracking_up(deps)  # back, and empty until read again
    assert copies.live


@pytest.mark.api_settings(cache_ttl_seconds=0.5)
async def test_a_copy_never_outlives_its_redis_entry(api: Api, db: asyncpg.Pool) -> None:
    """Changes made outside the api (the worker's probe) still show within the cache TTL
    with the in-process copies on (10 s by default, longer than this TTL)."""
    _, operator = await api.tenant_user("operator")
    stream = await api.stream(operator)
    path = f"/api/v1/streams/{stream['id']}"
    copies = await tracking_up(api.app.state.deps)
    await copied(copies, lambda: api.client.get(path, headers=operator), "stream")
    await db.execute("UPDATE streams SET status = 'online' WHERE id = $1", uuid.UUID(stream["id"]))
    await asyncio.sleep(0.6)
    assert (await api.client.get(path, headers=operator)).json()["status"] == "online"
