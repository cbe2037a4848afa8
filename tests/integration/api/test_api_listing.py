"""The stream list: keyset pages under concurrent inserts, sort, filters, search, sparse
fields, totals (from the aggregator's counts or SQL) and one SQL statement per page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from lookout_shared.redis import Keys, create_redis

from tests.conftest import trust_counts

from .conftest import Api


async def walk(api: Api, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/api/v1/streams", params=query, headers=headers)
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen


async def seed(db: asyncpg.Pool, tenant: str, names: list[str], **cols: Any) -> None:
    """Insert streams directly (fast), spread over distinct creation times."""
    await db.executemany(
        """INSERT INTO streams (id, tenant_id, name, url, kind, tags, status, created_at)
           VALUES ($1, $2, $3, 'rtsp://cam/x', $4, $5, $6, now() - make_interval(secs => $7))""",
        [
            (
                uuid.uuid4(),
                uuid.UUID(tenant),
                n,
                cols.get("kind", "rtsp"),
                cols.get("tags", []),
                cols.get("status", "pending"),
                float(i),
            )
            for i, n in enumerate(names)
        ],
    )


async def test_cursor_walk_under_concurrent_inserts_sees_each_stream_once(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, operator = await api.tenant_user("operator")
    names = [f"pre-{i:03d}" for i in range(120)]
    await seed(db, tenant, names)
    # Ties on created_at must not lose or repeat rows: the id breaks them.
    await db.execute(
        "UPDATE streams SET created_at = date_trunc('minute', created_at) WHERE name LIKE 'pre-00%'"
    )
    stop = asyncio.Event()

    async def writer() -> int:
        made = 0
        while not stop.is_set():
            await api.stream(operator, name=f"new-{made}")
            made += 1
        return made

    for sort in ("-created_at", "created_at", "name", "-name"):
        stop.clear()
        task = asyncio.create_task(writer())
        seen = await walk(api, operator, limit=7, sort=sort)
        stop.set()
        inserted = await task
        pre = [s["name"] for s in seen if s["name"].startswith("pre-")]
        assert sorted(pre) == names, sort  # every pre-existing stream exactly once
        ids = [s["id"] for s in seen]
        assert len(ids) == len(set(ids)), sort
        assert inserted > 0
    by_name = [s["name"] for s in await walk(api, operator, limit=50, sort="name", q="pre-")]
    assert by_name == sorted(names)


async def test_sort_filters_search_and_sparse_fields(api: Api, db: asyncpg.Pool) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await seed(db, tenant, ["Gate North", "gate south", "Yard"], tags=["outdoor"])
    await seed(db, tenant, ["Lobby 50%_off"], kind="http", status="online", tags=["indoor"])

    async def names(**params: Any) -> list[str]:
        r = await api.client.get("/api/v1/streams", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        return [s["name"] for s in r.json()["items"]]

    assert await names(sort="name") == ["Gate North", "Lobby 50%_off", "Yard", "gate south"]
    assert await names(sort="-created_at") == ["Lobby 50%_off", "Gate North", "gate south", "Yard"]
    assert await names(q="gate", sort="name") == ["Gate North", "gate south"]
    assert await names(q="%") == ["Lobby 50%_off"]  # wildcards are literal
    assert await names(q="_") == ["Lobby 50%_off"]
    assert await names(kind="http") == ["Lobby 50%_off"]
    assert await names(status="online") == ["Lobby 50%_off"]
    assert await names(tag="outdoor", sort="name") == ["Gate North", "Yard", "gate south"]
    assert await names(tag="OUTDOOR", q="north") == ["Gate North"]
    assert await names(sort="name", limit=2, page=2) == ["Yard", "gate south"]
    assert await names(sort="name", limit=2, offset=1) == ["Lobby 50%_off", "Yard"]

    r = await api.client.get("/api/v1/streams", params={"fields": "name,status"}, headers=viewer)
    assert set(r.json()["items"][0]) == {"id", "name", "status"}
    for bad in (
        {"fields": "name,password"},
        {"sort": "url"},
        {"status": "sleeping"},
        {"limit": 501},
        {"limit": 0},
        {"cursor": "bm90LWpzb24"},
        {"offset": 2, "page": 2},
    ):
        r = await api.client.get("/api/v1/streams", params=bad, headers=viewer)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
    # A cursor made for one sort is refused for another.
    r = await api.client.get("/api/v1/streams", params={"limit": 1, "sort": "name"}, headers=viewer)
    cursor = r.json()["next_cursor"]
    r = await api.client.get("/api/v1/streams", params={"cursor": cursor}, headers=viewer)
    assert r.status_code == 422 and "sort=name" in r.json()["detail"]


@asynccontextmanager
async def counts_hash(api: Api, tenant: str, fields: dict[str, int]) -> AsyncIterator[None]:
    """Stand in for the count-aggregator: write the tenant's count hash (trusted)."""
    redis = create_redis(api.settings.redis_url.get_secret_value())
    key = Keys(api.settings.redis_prefix)("counts", "tenant", tenant)
    await redis.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
    await trust_counts(redis, api.settings.redis_prefix)
    try:
        yield
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_total_comes_from_counts_for_one_dimension_else_sql(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await seed(db, tenant, ["a", "b", "c"], tags=["x"])

    async def total(**params: Any) -> tuple[int, bool, str]:
        body = (await api.client.get("/api/v1/streams", params=params, headers=viewer)).json()
        return body["total"], body["total_is_exact"], body["total_source"]

    # No aggregator hash yet (a new tenant): counted in SQL.
    assert await total() == (3, True, "sql")
    # The aggregator's numbers win when they exist (deliberately different here to tell).
    async with counts_hash(api, tenant, {"streams_total": 7, "streams_tag:x": 6}):
        assert await total() == (7, True, "counts")
        assert await total(tag="x") == (6, True, "counts")
        assert await total(status="online") == (0, True, "counts")  # zero counts are absent
        assert await total(tag="x", status="pending") == (3, True, "sql")  # two dimensions
        assert await total(q="a") == (1, True, "sql")


@contextmanager
def redis_down(api: Api) -> Iterator[None]:
    deps = api.app.state.deps
    real = deps.redis
    # A closed loopback port: connecting fails at once.
    deps.redis = create_redis("redis://127.0.0.1:1/0")
    try:
        yield
    finally:
        deps.redis = real


async def test_total_falls_back_to_sql_when_redis_is_down(api: Api, db: asyncpg.Pool) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await seed(db, tenant, ["a", "b"])
    async with counts_hash(api, tenant, {"streams_total": 99}):
        with redis_down(api):
            body = (await api.client.get("/api/v1/streams", headers=viewer)).json()
    assert (body["total"], body["total_is_exact"], body["total_source"]) == (2, True, "sql")


async def test_sql_total_is_capped_and_marked_inexact(api: Api, db: asyncpg.Pool) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await db.execute(
        """INSERT INTO streams (id, tenant_id, name, url, kind)
           SELECT gen_random_uuid(), $1, 'bulk-' || g, 'rtsp://cam/x', 'rtsp'
           FROM generate_series(1, 10001) g""",
        uuid.UUID(tenant),
    )
    body = (
        await api.client.get("/api/v1/streams", params={"q": "bulk", "limit": 3}, headers=viewer)
    ).json()
    assert (body["total"], body["total_is_exact"]) == (10_000, False)
    assert len(body["items"]) == 3


class CountingPool:
    """The app's pool, counting every SQL statement its connections run."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            logger = lambda record: self.statements.append(record.query)  # noqa: E731
            conn.add_query_logger(logger)
            try:
                yield conn
            finally:
                conn.remove_query_logger(logger)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def test_one_sql_statement_per_page(api: Api, db: asyncpg.Pool) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await seed(db, tenant, [f"s{i}" for i in range(30)], tags=["t"])
    deps = api.app.state.deps
    counting = CountingPool(deps.pool)
    deps.pool = counting
    try:
        params: dict[str, Any]
        for params in (
            {"limit": 10},
            {"limit": 10, "sort": "name", "tag": "t"},
            {"limit": 10, "q": "s1", "fields": "name"},
        ):
            cursor = None
            for _ in range(3):
                counting.statements.clear()
                query: dict[str, Any] = {**params, **({"cursor": cursor} if cursor else {})}
                r = await api.client.get("/api/v1/streams", params=query, headers=viewer)
                assert r.status_code == 200
                assert len(counting.statements) == 1, counting.statements
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    break
        counting.statements.clear()
        await api.client.get("/api/v1/streams", params={"limit": 500}, headers=viewer)
        assert len(counting.statements) == 1
    finally:
        deps.pool = counting.pool
