"""GET /api/v1/counts: the aggregator's hash in Redis, or SQL by the same rules (flagged)
when Redis is down or has no counts for the scope."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
import pytest
from lookout_shared.count_rules import grouped_counts
from lookout_shared.redis import Keys, create_redis

from tests.conftest import trust_counts

from .conftest import Api
from .test_api_cache import DEGRADED, redis_server_stopped


async def write_hash(api: Api, scope: str, fields: dict[str, int]) -> None:
    """Stand in for the count-aggregator: write a count hash (trusted)."""
    redis = create_redis(api.settings.redis_url.get_secret_value())
    keys = Keys(api.settings.redis_prefix)
    key = keys("counts", "platform") if scope == "platform" else keys("counts", "tenant", scope)
    try:
        await redis.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
        await trust_counts(redis, api.settings.redis_prefix)
    finally:
        await redis.aclose()


async def sql_counts(db: asyncpg.Pool, tenant: str | None) -> dict[str, int]:
    per_tenant = await grouped_counts(db, None if tenant is None else [uuid.UUID(tenant)])
    total: Counter[str] = Counter()
    for counts in per_tenant.values():
        total.update(counts)
    return dict(total)


async def test_counts_come_from_redis_when_the_aggregator_has_them(api: Api) -> None:
    tenant, viewer = await api.tenant_user("viewer")
    await write_hash(api, tenant, {"streams_total": 7, "streams_status:online": 5})
    r = await api.client.get("/api/v1/counts", headers=viewer)
    assert r.status_code == 200 and DEGRADED not in r.headers
    assert r.json() == {
        "scope": tenant,
        "counts": {"streams_total": 7, "streams_status:online": 5},
        "source": "counts",
    }


async def test_a_scope_without_a_hash_is_counted_in_sql(api: Api, db: asyncpg.Pool) -> None:
    tenant, operator = await api.tenant_user("operator")
    await api.stream(operator, tags=["door"])
    await api.stream(operator, url="http://cam.example.com/a.jpg")
    r = await api.client.get("/api/v1/counts", headers=operator)
    assert r.status_code == 200 and DEGRADED not in r.headers
    body = r.json()
    assert body["source"] == "sql"
    assert body["counts"] == await sql_counts(db, tenant)
    assert body["counts"]["streams_total"] == 2
    assert body["counts"]["streams_kind:http"] == body["counts"]["streams_tag:door"] == 1


@pytest.mark.api_settings(cache_breaker_seconds=0.2)
async def test_redis_stopped_counts_answer_from_sql_with_the_same_numbers(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, operator = await api.tenant_user("operator")
    _, other = await api.tenant_user("operator")
    for i in range(3):
        await api.stream(operator, name=f"a{i}", tags=["yard"])
    await api.stream(other, name="b")
    root = await api.login("root@example.com")
    # The aggregator's numbers (here deliberately different) win while Redis answers.
    await write_hash(api, tenant, {"streams_total": 99})
    await write_hash(api, "platform", {"streams_total": 100})
    assert (await api.client.get("/api/v1/counts", headers=operator)).json()["counts"] == {
        "streams_total": 99
    }
    platform = (await api.client.get("/api/v1/counts", headers=root)).json()
    assert (platform["scope"], platform["source"]) == ("platform", "counts")

    async with redis_server_stopped():
        r = await api.client.get("/api/v1/counts", headers=operator)
        assert r.status_code == 200 and r.headers[DEGRADED] == "redis"
        assert r.json()["scope"] == tenant and r.json()["source"] == "sql"
        assert r.json()["counts"] == await sql_counts(db, tenant)
        assert r.json()["counts"]["streams_tag:yard"] == 3
        r = await api.client.get("/api/v1/counts", headers=root)
        assert r.status_code == 200 and r.headers[DEGRADED] == "redis"
        assert (r.json()["scope"], r.json()["source"]) == ("platform", "sql")
        assert r.json()["counts"] == await sql_counts(db, None)
        assert r.json()["counts"]["streams_total"] == 4
