"""The read cache of stream reads: read-your-writes, tenant and role isolation, hits that
skip Postgres, conditional GETs, Redis stopped and restarted, and LOOKOUT_CACHE=off."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from lookout_shared.redis import Keys, create_redis
from prometheus_client import REGISTRY

from .conftest import Api

ROOT = Path(__file__).resolve().parents[3]
DEGRADED = "x-lookout-degraded"


def cache_requests(kind: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "lookout_cache_requests_total", {"kind": kind, "result": result}
    )
    return value or 0.0


def _stack(command: str) -> None:
    env = {**os.environ, "LOOKOUT_STACK": os.environ.get("LOOKOUT_STACK", "test")}
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), command], env=env, check=True)


@contextlib.asynccontextmanager
async def redis_server_stopped() -> AsyncIterator[None]:
    """The test stack's redis-server stopped for the block, started again after it (empty:
    test stacks keep no Redis data)."""
    await asyncio.to_thread(_stack, "stop-redis")
    try:
        yield
    finally:
        await asyncio.to_thread(_stack, "start-redis")


async def local_copies_off(api: Api, bound: float) -> None:
    started = time.monotonic()
    while api.app.state.deps.cache.local.live:
        assert time.monotonic() - started < bound, "copies still served past the bound"
        await asyncio.sleep(0.005)


async def cache_keys(api: Api) -> list[str]:
    redis = create_redis(api.settings.redis_url.get_secret_value())
    try:
        pattern = Keys(api.settings.redis_prefix)("cache", "*")
        return sorted([k.decode() async for k in redis.scan_iter(match=pattern)])
    finally:
        await redis.aclose()


async def listing(api: Api, headers: dict[str, str], **params: Any) -> Any:
    r = await api.client.get("/api/v1/streams", params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_write_is_seen_by_the_next_read_of_the_same_client(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    await listing(api, operator)  # a cached page exists before every write below
    live: dict[str, str] = {}
    for i in range(15):
        created = await api.stream(operator, name=f"s{i}")
        live[created["id"]] = created["name"]
        page = await listing(api, operator)
        assert {s["id"]: s["name"] for s in page["items"]} == live
        assert page["total"] == len(live)
        r = await api.client.patch(
            f"/api/v1/streams/{created['id']}", json={"name": f"renamed-{i}"}, headers=operator
        )
        assert r.status_code == 200, r.text
        live[created["id"]] = f"renamed-{i}"
        assert {s["id"]: s["name"] for s in (await listing(api, operator))["items"]} == live
        one = await api.client.get(f"/api/v1/streams/{created['id']}", headers=operator)
        assert one.json()["name"] == f"renamed-{i}" and one.json()["version"] == 2
        if i % 2:
            r = await api.client.delete(f"/api/v1/streams/{created['id']}", headers=operator)
            assert r.status_code == 204
            del live[created["id"]]
            assert {s["id"] for s in (await listing(api, operator))["items"]} == set(live)
            gone = await api.client.get(f"/api/v1/streams/{created['id']}", headers=operator)
            assert gone.status_code == 404
    r = await api.client.post(
        "/api/v1/streams:bulk",
        json={"items": [{"id": sid, "name": "bulk"} for sid in live]},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    assert {s["name"] for s in (await listing(api, operator))["items"]} == {"bulk"}


async def test_concurrent_clients_each_read_their_own_writes(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    hits = cache_requests("list", "hit")

    async def client(n: int) -> None:
        mine: set[str] = set()
        for i in range(8):
            created = await api.stream(operator, name=f"c{n}-{i}")
            mine.add(created["id"])
            page = await listing(api, operator, sort="name")
            assert mine <= {s["id"] for s in page["items"]}
            r = await api.client.patch(
                f"/api/v1/streams/{created['id']}", json={"tags": [f"t{n}"]}, headers=operator
            )
            assert r.status_code == 200
            page = await listing(api, operator, tag=f"t{n}")
            assert created["id"] in {s["id"] for s in page["items"]}
            if i % 3 == 0:
                assert (
                    await api.client.delete(f"/api/v1/streams/{created['id']}", headers=operator)
                ).status_code == 204
                mine.discard(created["id"])
                page = await listing(api, operator, sort="name")
                assert created["id"] not in {s["id"] for s in page["items"]}
            # Reads without a write in between may be served from the cache.
            await listing(api, operator, sort="-name")
            await listing(api, operator, sort="-name")

    await asyncio.gather(*(client(n) for n in range(4)))
    assert cache_requests("list", "hit") > hits


async def test_tenants_and_roles_never_share_an_entry(api: Api) -> None:
    tenant_a, admin_a = await api.tenant_user("admin")
    _, viewer_a = await api.tenant_user("viewer", tenant_a)
    _, admin_b = await api.tenant_user("admin")
    a = await api.stream(admin_a, name="same", url="rtsp://user:pw@cam.example.com/a")
    b = await api.stream(admin_b, name="same", url="rtsp://cam.example.com/b")
    for _ in range(2):  # the second round is served from the cache
        for headers, mine in ((admin_a, a), (admin_b, b)):
            page = await listing(api, headers, q="same")
            assert [s["id"] for s in page["items"]] == [mine["id"]]
            one = await api.client.get(f"/api/v1/streams/{mine['id']}", headers=headers)
            assert one.json()["id"] == mine["id"]
    assert (await api.client.get(f"/api/v1/streams/{a['id']}", headers=admin_b)).status_code == 404

    # The viewer reads first, then the admin, then the viewer again: each gets its own view.
    for headers, sees_url in ((viewer_a, False), (admin_a, True), (viewer_a, False)):
        page = await listing(api, headers)
        assert ("url" in page["items"][0]) is sees_url
        one = (await api.client.get(f"/api/v1/streams/{a['id']}", headers=headers)).json()
        assert ("url" in one) is sees_url
        if sees_url:
            assert one["url"] == "rtsp://***:***@cam.example.com/a"
    # Asking for the url explicitly does not help a viewer.
    page = await listing(api, viewer_a, fields="name,url")
    assert set(page["items"][0]) == {"id", "name"}
    page = await listing(api, admin_a, fields="name,url")
    assert set(page["items"][0]) == {"id", "name", "url"}

    # A superuser's platform view is its own entry, and sees both tenants.
    root = await api.login("root@example.com")
    ids = {s["id"] for s in (await listing(api, root, q="same"))["items"]}
    assert ids == {a["id"], b["id"]}
    # Every entry lives under its tenant's (or the platform's) key space.
    keys = await cache_keys(api)
    entries = [k for k in keys if ":cache:list:" in k or ":cache:stream:" in k]
    scopes = {k.split(":cache:")[1].split(":")[1] for k in entries}
    assert scopes == {tenant_a, b["tenant_id"], "platform"}


@pytest.mark.api_settings(cache_local_seconds=0)
async def test_a_hit_skips_postgres_until_an_api_write(api: Api, db: asyncpg.Pool) -> None:
    _, operator = await api.tenant_user("operator")
    s1 = await api.stream(operator, name="one")
    s2 = await api.stream(operator, name="two")
    await listing(api, operator)
    await api.client.get(f"/api/v1/streams/{s1['id']}", headers=operator)
    # A change behind the api's back (as the worker's probe makes): the cache does not see it.
    await db.execute("UPDATE streams SET name = 'behind' WHERE id = $1", uuid.UUID(s1["id"]))
    hits = cache_requests("list", "hit"), cache_requests("stream", "hit")
    assert "behind" not in {s["name"] for s in (await listing(api, operator))["items"]}
    one = await api.client.get(f"/api/v1/streams/{s1['id']}", headers=operator)
    assert one.json()["name"] == "one"
    assert cache_requests("list", "hit") == hits[0] + 1
    assert cache_requests("stream", "hit") == hits[1] + 1
    # Any api write to the tenant's streams makes its entries stale.
    r = await api.client.patch(f"/api/v1/streams/{s2['id']}", json={"name": "2"}, headers=operator)
    assert r.status_code == 200
    assert "behind" in {s["name"] for s in (await listing(api, operator))["items"]}
    one = await api.client.get(f"/api/v1/streams/{s1['id']}", headers=operator)
    assert one.json()["name"] == "behind"


@pytest.mark.api_settings(cache_ttl_seconds=0.3, cache_local_seconds=0)
async def test_changes_outside_the_api_show_within_the_ttl(api: Api, db: asyncpg.Pool) -> None:
    _, operator = await api.tenant_user("operator")
    s = await api.stream(operator)
    await api.client.get(f"/api/v1/streams/{s['id']}", headers=operator)
    await db.execute(
        "UPDATE streams SET status = 'online', width = 1280, height = 720 WHERE id = $1",
        uuid.UUID(s["id"]),
    )
    await asyncio.sleep(0.4)
    one = (await api.client.get(f"/api/v1/streams/{s['id']}", headers=operator)).json()
    assert (one["status"], one["height"]) == ("online", 720)


async def test_conditional_get_answers_304_from_the_cache(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    s = await api.stream(operator)
    first = await api.client.get(f"/api/v1/streams/{s['id']}", headers=operator)
    etag = first.headers["etag"]
    assert etag == f'"{s["id"]}.1"'
    hits = cache_requests("stream", "hit")
    for _ in range(2):
        r = await api.client.get(
            f"/api/v1/streams/{s['id']}", headers={**operator, "If-None-Match": etag}
        )
        assert r.status_code == 304 and r.headers["etag"] == etag and r.content == b""
    assert cache_requests("stream", "hit") == hits + 2
    r = await api.client.patch(f"/api/v1/streams/{s['id']}", json={"name": "n"}, headers=operator)
    r = await api.client.get(
        f"/api/v1/streams/{s['id']}", headers={**operator, "If-None-Match": etag}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.headers["etag"] == f'"{s["id"]}.2"'


@pytest.mark.api_settings(cache_breaker_seconds=0.3)
async def test_redis_stopped_reads_come_from_postgres_and_caching_resumes(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    s = await api.stream(operator, name="before")
    await listing(api, operator)
    assert DEGRADED not in (await api.client.get("/api/v1/streams", headers=operator)).headers

    async with redis_server_stopped():
        # In-process copies are served until the invalidation channel notices, within its
        # documented bound (heartbeat + timeout); the stop usually shows at once as its EOF.
        await local_copies_off(api, bound=3.0)
        skipped = cache_requests("list", "bypass") + cache_requests("list", "error")
        for _ in range(3):
            r = await api.client.get("/api/v1/streams", headers=operator)
            assert r.status_code == 200 and r.headers[DEGRADED] == "redis"
            assert [x["name"] for x in r.json()["items"]] == ["before"]
            assert r.json()["total_source"] == "sql"
        assert cache_requests("list", "bypass") + cache_requests("list", "error") == skipped + 3
        # Writes still succeed; the next read sees them.
        created = await api.stream(operator, name="during")
        r = await api.client.get(f"/api/v1/streams/{created['id']}", headers=operator)
        assert r.status_code == 200 and r.headers[DEGRADED] == "redis"
        names = {x["name"] for x in (await listing(api, operator))["items"]}
        assert names == {"before", "during"}
        r = await api.client.get("/api/v1/counts", headers=operator)
        assert r.status_code == 200 and r.headers[DEGRADED] == "redis"

    await asyncio.sleep(0.4)  # the breaker's pause
    hits = cache_requests("list", "hit")
    for _ in range(2):
        r = await api.client.get("/api/v1/streams", headers=operator)
        assert r.status_code == 200 and DEGRADED not in r.headers
        assert {x["name"] for x in r.json()["items"]} == {"before", "during"}
    assert cache_requests("list", "hit") == hits + 1
    # The generation bump lost during the outage was made up for: the epoch moved.
    redis = create_redis(api.settings.redis_url.get_secret_value())
    try:
        # (by this process's next lookup or by the retry task, whichever came first)
        assert int(await redis.get(Keys(api.settings.redis_prefix)("cache", "epoch")) or 0) >= 1
    finally:
        await redis.aclose()
    assert (await api.client.get(f"/api/v1/streams/{s['id']}", headers=operator)).status_code == 200


@pytest.mark.api_settings(cache="off")
async def test_cache_off_writes_no_entries(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    s = await api.stream(operator)
    bypass = cache_requests("list", "bypass")
    for _ in range(3):
        await listing(api, operator)
        r = await api.client.get(f"/api/v1/streams/{s['id']}", headers=operator)
        assert r.status_code == 200 and DEGRADED not in r.headers
    assert cache_requests("list", "bypass") == bypass + 3
    keys = await cache_keys(api)
    assert not [k for k in keys if ":cache:list:" in k or ":cache:stream:" in k], keys


async def test_gzip_and_plain_clients_each_get_their_own_encoding_from_the_cache(
    api: Api,
) -> None:
    _, admin = await api.tenant_user("admin")
    for i in range(40):  # a page well over the gzip threshold
        await api.stream(admin, name=f"cam-{i:02d}")
    answers: dict[str, list[tuple[str | None, Any]]] = {"gzip": [], "identity": []}
    hits = cache_requests("list", "hit")
    for _ in range(2):
        for encoding, seen in answers.items():
            r = await api.client.get(
                "/api/v1/streams", headers={**admin, "Accept-Encoding": encoding}
            )
            assert r.status_code == 200, r.text
            seen.append((r.headers.get("content-encoding"), r.json()))
    assert cache_requests("list", "hit") - hits == 2  # the second round came from the cache
    assert [e for e, _ in answers["gzip"]] == ["gzip", "gzip"]
    assert [e for e, _ in answers["identity"]] == [None, None]
    bodies = [body for seen in answers.values() for _, body in seen]
    assert all(body == bodies[0] for body in bodies) and len(bodies[0]["items"]) == 40


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("limit=1&limit=3", "limit=3&limit=1"),
        ("sort=name&sort=-name", "sort=-name&sort=name"),
        ("fields=name&fields=tags", "fields=tags&fields=name"),
        ("tag=a&status=pending&tag=b", "tag=b&status=pending&tag=a"),
    ],
)
async def test_repeated_query_parameters_in_another_order_are_not_served_one_entry(
    api: Api, first: str, second: str
) -> None:
    """A single-valued parameter sent twice takes its last value, so the order of a
    repeated name changes the answer: each order must get what the route answers for it."""
    _, admin = await api.tenant_user("admin")
    for name, tags in (("a1", ["a"]), ("b1", ["b"]), ("a2", ["a"]), ("b2", ["b"])):
        await api.stream(admin, name=name, tags=tags)
    cache = api.app.state.deps.cache

    async def answer(query: str) -> Any:
        r = await api.client.get(f"/api/v1/streams?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return r.json()

    cache.enabled = False
    uncached = {query: await answer(query) for query in (first, second)}
    cache.enabled = True
    assert uncached[first] != uncached[second]  # the route does tell them apart
    hits = cache_requests("list", "hit")
    for _ in range(2):  # the second round comes from the cache
        for query in (first, second):
            assert await answer(query) == uncached[query], query
    assert cache_requests("list", "hit") == hits + 2
