"""A slow Redis (stalled for real with DEBUG SLEEP) and a stopped one: readiness holds across
one failed probe and reports down after a sustained outage; a write's generation bump waits
out a stall instead of being skipped, and a bump Redis refuses is made up by itself, so
another api process never keeps serving an entry from before the write."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from lookout_api.entrypoints.http import create_app
from lookout_api.settings import ApiSettings
from lookout_shared.redis import create_redis
from redis.exceptions import RedisError

from .conftest import Api

ROOT = Path(__file__).resolve().parents[3]
DEGRADED = "x-lookout-degraded"


def _stack(command: str) -> None:
    env = {**os.environ, "LOOKOUT_STACK": os.environ.get("LOOKOUT_STACK", "test")}
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), command], env=env, check=True)


@contextlib.asynccontextmanager
async def redis_stalled(settings: ApiSettings, seconds: float) -> AsyncIterator[None]:
    """Redis blocked for ``seconds`` (DEBUG SLEEP: it answers nobody meanwhile); the block
    runs once the stall has begun, and the stall is over after it."""
    url = urlsplit(settings.redis_url.get_secret_value())
    command = ["redis-cli", "-h", str(url.hostname), "-p", str(url.port), "DEBUG", "SLEEP"]
    sleeper = asyncio.create_task(
        asyncio.to_thread(subprocess.run, [*command, str(seconds)], check=True)
    )
    probe = create_redis(settings.redis_url.get_secret_value())
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until a PING goes unanswered: the stall is on
            try:
                async with asyncio.timeout(0.05):
                    await probe.ping()
            except (TimeoutError, RedisError):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("Redis never stalled")
        yield
    finally:
        await sleeper
        await probe.aclose()


async def readyz(api: Api) -> tuple[int, dict[str, str]]:
    r = await api.client.get("/readyz")
    return r.status_code, r.json()["checks"]


@pytest.mark.api_settings(readiness_timeout_seconds=0.3)
async def test_readiness_holds_across_one_slow_redis_probe_and_drops_on_an_outage(
    api: Api,
) -> None:
    assert await readyz(api) == (200, {"postgres": "ok", "redis": "ok", "rabbitmq": "ok"})
    async with redis_stalled(api.settings, 1.0):
        status, checks = await readyz(api)  # Redis misses the probe's 0.3 s
    assert (status, checks["redis"]) == (200, "failing")
    assert await readyz(api) == (200, {"postgres": "ok", "redis": "ok", "rabbitmq": "ok"})

    await asyncio.to_thread(_stack, "stop-redis")
    try:
        seen = [await readyz(api) for _ in range(3)]
    finally:
        await asyncio.to_thread(_stack, "start-redis")
    # Ready through the first failed probes, down from the third in a row.
    assert [(s, c["redis"]) for s, c in seen] == [
        (200, "failing"),
        (200, "failing"),
        (503, "unavailable"),
    ]
    assert seen[2][1]["postgres"] == "ok"
    assert await readyz(api) == (200, {"postgres": "ok", "redis": "ok", "rabbitmq": "ok"})


@contextlib.asynccontextmanager
async def second_api(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """Another api process's app on the same Postgres and Redis key space."""
    app = create_app(api.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def names(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[set[Any], Any]:
    r = await client.get("/api/v1/streams", headers=headers)
    assert r.status_code == 200, r.text
    return {s["name"] for s in r.json()["items"]}, r.headers


async def test_a_write_during_a_redis_stall_bumps_the_generation_instead_of_skipping_it(
    api: Api,
) -> None:
    _, admin = await api.tenant_user("admin")
    s = await api.stream(admin, name="before")
    async with second_api(api) as other:
        assert (await names(other, admin))[0] == {"before"}  # cached in the other process
        async with redis_stalled(api.settings, 1.0):
            r = await api.client.patch(
                f"/api/v1/streams/{s['id']}", json={"name": "after"}, headers=admin
            )
            assert r.status_code == 200, r.text
        # Neither process serves the entry from before the write, and the stall did not
        # send this process's reads to Postgres.
        seen, headers = await names(api.client, admin)
        assert seen == {"after"} and DEGRADED not in headers
        assert (await names(other, admin))[0] == {"after"}
        assert api.app.state.deps.cache.generations.owed == 0  # the bump was made


@pytest.mark.api_settings(cache_breaker_seconds=30)
async def test_a_generation_bump_redis_refused_is_made_up_without_waiting_for_a_read(
    api: Api,
) -> None:
    _, admin = await api.tenant_user("admin")
    s = await api.stream(admin, name="before")
    cache = api.app.state.deps.cache
    async with second_api(api) as other:
        # A lookup that misses its timeout opens this process's breaker for 30 s.
        async with redis_stalled(api.settings, 1.0):
            assert (await names(api.client, admin))[1][DEGRADED] == "redis"
        assert not cache.breaker.closed
        assert (await names(other, admin))[0] == {"before"}  # cached in the other process
        # The write's bump is not even tried (the breaker is open): it is owed.
        r = await api.client.patch(
            f"/api/v1/streams/{s['id']}", json={"name": "after"}, headers=admin
        )
        assert r.status_code == 200, r.text
        # No read goes through this process, yet the other one stops serving the entry
        # from before the write soon, far within its 30 s TTL.
        deadline = time.monotonic() + 5
        while (await names(other, admin))[0] != {"after"}:
            assert time.monotonic() < deadline, "the lost bump was never made up"
            await asyncio.sleep(0.1)
        assert cache.generations.owed == 0
