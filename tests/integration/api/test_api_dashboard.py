"""The dashboard summary: its numbers against SQL, tenant isolation, its bounded cost (one
SQL statement, one pipelined Redis round trip) and RabbitMQ's queue depths.

The handler-level tests build the api's real dependencies without the broker (so no outbox
relay changes the backlog under the test) and a pool of one connection, whose statements
asyncpg's query logger records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from lookout_api import bootstrap, handlers
from lookout_api.adapters import counts_sql
from lookout_api.bootstrap import Deps
from lookout_api.domain.errors import NotFound
from lookout_api.settings import ApiSettings
from lookout_shared.count_keys import scope_key
from lookout_shared.drift_report import DriftReport, encode, report_key
from lookout_shared.tokens import Principal

from tests.conftest import trust_counts

from .conftest import PASSWORD, Api


async def _deps(tmp_path: Path, **values: Any) -> Deps:
    settings = ApiSettings(
        storage_dir=str(tmp_path / "snapshots"),
        redis_prefix=f"t-{uuid.uuid4().hex[:8]}:",
        db_pool_min=1,
        db_pool_max=1,
        **values,
    )
    return await bootstrap.build(settings, with_broker=False)


@pytest.fixture
async def deps(db: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Deps]:
    d = await _deps(tmp_path)
    yield d
    await bootstrap.close(d)


@pytest.fixture
async def deps_without_redis(db: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Deps]:
    d = await _deps(tmp_path, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    yield d
    await bootstrap.close(d)


async def _user(deps: Deps, role: str, tenant: uuid.UUID | None) -> Principal:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    await handlers.create_user(deps, None, email, PASSWORD, role, tenant)  # type: ignore[arg-type]
    token, _ = await handlers.login(deps, email, PASSWORD)
    return deps.codec.verify(token)


async def _tenant(deps: Deps, db: asyncpg.Pool, streams: int, errors: int, failed: int) -> Any:
    """A tenant and an operator with ``streams`` streams, ``errors`` of them in error, and
    ``failed`` failed jobs."""
    tenant = (await handlers.create_tenant(deps, None, f"t-{uuid.uuid4().hex[:8]}"))["id"]
    op = await _user(deps, "operator", tenant)
    for i in range(streams):
        await handlers.create_stream(
            deps, op, name=f"s{i}", url=f"rtsp://cam.example.com/{i}", tags=["door"], enabled=True
        )
    await db.execute(
        """UPDATE streams SET status = 'error', last_error = 'refused', updated_at = now()
           WHERE id IN (SELECT id FROM streams WHERE tenant_id = $1 LIMIT $2)""",
        tenant,
        errors,
    )
    await db.execute(
        """INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, attempts, error,
                                      finished_at, created_at)
           SELECT gen_random_uuid(), tenant_id, id, 'failed', 3, 'timeout', now(),
                  clock_timestamp()
           FROM streams, generate_series(1, $2) WHERE tenant_id = $1""",
        tenant,
        failed,
    )
    return tenant, op


class Statements:
    """Every statement the pool's one connection runs (asyncpg's query logger)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        # The pool's own reset on release is not the handler's.
        if "pg_advisory_unlock_all" not in record.query and "RESET ALL" not in record.query:
            self.queries.append(record.query)


async def _log_statements(deps: Deps) -> Statements:
    statements = Statements()
    async with deps.pool.acquire() as conn:
        conn.add_query_logger(statements)
    return statements


async def _redis_calls(deps: Deps) -> Counter[str]:
    """Commands the Redis server has run, by name (INFO commandstats)."""
    stats = await deps.redis.info("commandstats")
    return Counter(
        {
            name.removeprefix("cmdstat_"): v["calls"]
            for name, v in stats.items()
            if "info" not in name
        }
    )


async def test_the_summary_against_sql_in_one_statement(deps: Deps, db: asyncpg.Pool) -> None:
    tenant, op = await _tenant(deps, db, streams=3, errors=2, failed=2)
    await _tenant(deps, db, streams=2, errors=1, failed=1)  # another tenant: never counted
    await deps.redis.ping()  # connect first: only the summary's own commands are measured
    statements = await _log_statements(deps)
    before = await _redis_calls(deps)

    d = await handlers.dashboard(deps, op)

    assert len(statements.queries) == 1, statements.queries
    # The counts script checks the epoch (HMGET) before reading a hash: here there is none.
    # Two GETs: the drift check's last result and the tenant's snapshot request rate.
    assert await _redis_calls(deps) - before == Counter({"eval": 1, "hmget": 1, "get": 2})
    assert d.scope == tenant
    # No count hash yet (no aggregator ran): counted in SQL by the aggregator's rules.
    assert d.counts_source == "sql"
    assert d.counts == await counts_sql.read_counts(db, tenant)
    assert d.counts["streams_total"] == 3 and d.counts["streams_status:error"] == 2
    assert d.counts["jobs_status:failed"] == 6 and d.counts["streams_tag:door"] == 3
    failed = await db.fetch(
        """SELECT id FROM snapshot_jobs WHERE tenant_id = $1 AND status = 'failed'
           ORDER BY created_at DESC""",
        tenant,
    )
    assert [j["id"] for j in d.failed_jobs] == [str(r["id"]) for r in failed]
    assert {j["error"] for j in d.failed_jobs} == {"timeout"}
    errors = await db.fetch(
        "SELECT id FROM streams WHERE tenant_id = $1 AND status = 'error'", tenant
    )
    assert {s["id"] for s in d.error_streams} == {str(r["id"]) for r in errors}
    backlog = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert d.outbox_unpublished == backlog == 10  # stream.created and stream.probe each
    assert d.outbox_oldest_age_seconds is not None and d.outbox_oldest_age_seconds >= 0
    assert d.health == {"postgres": True, "redis": True, "rabbitmq": False}
    assert d.queue_depths is None
    usage = d.quota_usage
    assert usage is not None and usage.tenant_id == tenant
    assert (usage.streams_used, usage.quotas.max_streams) == (3, 10_000)
    assert (usage.snapshot_requests_this_minute, usage.quotas.snapshot_requests_per_minute) == (
        0,
        600,
    )

    # With the aggregator's hash in Redis (under a current epoch), the counts come from it.
    await deps.redis.hset(scope_key(deps.keys, tenant), mapping={"streams_total": 42})
    await trust_counts(deps.redis, deps.keys.prefix)
    statements.queries.clear()
    d = await handlers.dashboard(deps, op)
    assert (d.counts_source, d.counts) == ("counts", {"streams_total": 42})
    assert len(statements.queries) == 1


async def test_tenant_isolation_and_the_platform_scope(deps: Deps, db: asyncpg.Pool) -> None:
    a, op_a = await _tenant(deps, db, streams=2, errors=1, failed=1)
    b, _ = await _tenant(deps, db, streams=1, errors=1, failed=2)
    root = await _user(deps, "superuser", None)
    viewer = await _user(deps, "viewer", a)

    mine = await handlers.dashboard(deps, viewer)
    assert {j["tenant_id"] for j in mine.failed_jobs} == {str(a)}
    assert {s["tenant_id"] for s in mine.error_streams} == {str(a)}
    assert len(mine.failed_jobs) == 2
    with pytest.raises(NotFound):
        await handlers.dashboard(deps, op_a, b)
    assert (await handlers.dashboard(deps, op_a, a)).scope == a

    platform = await handlers.dashboard(deps, root)
    assert platform.scope is None and platform.quota_usage is None
    assert {j["tenant_id"] for j in platform.failed_jobs} == {str(a), str(b)}
    assert len(platform.error_streams) == 2
    assert platform.counts["streams_total"] == 3
    one = await handlers.dashboard(deps, root, b)
    assert one.scope == b and {s["tenant_id"] for s in one.error_streams} == {str(b)}
    assert one.counts["streams_total"] == 1
    with pytest.raises(NotFound):
        await handlers.dashboard(deps, root, uuid.uuid4())


async def test_without_redis_counts_come_from_sql(
    deps_without_redis: Deps, db: asyncpg.Pool
) -> None:
    deps = deps_without_redis
    tenant, op = await _tenant(deps, db, streams=2, errors=0, failed=0)
    statements = await _log_statements(deps)
    d = await handlers.dashboard(deps, op)
    assert len(statements.queries) == 1
    assert d.counts_source == "sql" and d.counts == await counts_sql.read_counts(db, tenant)
    assert d.health["redis"] is False
    assert d.quota_usage is not None and d.quota_usage.snapshot_requests_this_minute is None


async def test_the_summary_over_http_with_rabbitmq(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    s = await api.stream(op)
    r = await api.client.post(f"/api/v1/streams/{s['id']}/snapshots", headers=op)
    assert r.status_code == 202
    broker = api.app.state.deps.broker
    for _ in range(600):  # the lifespan connects in the background
        if broker.is_connected:
            break
        await asyncio.sleep(0.05)

    r = await api.client.get("/api/v1/dashboard/summary", headers=op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "scope",
        "counts",
        "failed_jobs",
        "error_streams",
        "queues",
        "health",
        "quotas",
        "drift",
    }
    assert body["scope"] == tenant
    assert body["drift"] is None  # no drift check has run
    assert body["health"] == {"postgres": True, "redis": True, "rabbitmq": True}
    depths = body["queues"]["rabbitmq"]
    assert {"snapshot.capture", "stream.probe", "snapshot.capture.dead"} <= set(depths)
    assert all(isinstance(n, int) and n >= 0 for n in depths.values())
    assert body["queues"]["outbox"]["unpublished"] >= 0
    assert body["counts"]["source"] == "sql"
    assert body["counts"]["counts"]["streams_total"] == 1
    assert body["counts"]["counts"]["jobs_status:queued"] == 1
    assert body["quotas"]["max_streams"] == {"limit": 10_000, "used": 1, "default": True}
    assert body["quotas"]["snapshot_requests_per_minute"]["used"] == 1

    # The aggregator's last drift check, as it leaves it in Redis: counts only.
    checked = DriftReport(checked_at=1_800_000_000.5, mode="sampled", scopes=2, fields=3)
    await api.app.state.deps.redis.set(report_key(api.app.state.deps.keys), encode(checked))
    r = await api.client.get("/api/v1/dashboard/summary", headers=op)
    assert r.json()["drift"] == {
        "checked_at": "2027-01-15T08:00:00.500000Z",
        "mode": "sampled",
        "scopes": 2,
        "fields": 3,
    }

    _, other = await api.tenant_user("viewer")
    r = await api.client.get(
        "/api/v1/dashboard/summary", params={"tenant_id": tenant}, headers=other
    )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    root = await api.login("root@example.com")
    r = await api.client.get("/api/v1/dashboard/summary", headers=root)
    assert r.status_code == 200 and r.json()["scope"] == "platform"
    assert r.json()["quotas"] is None
    r = await api.client.get(
        "/api/v1/dashboard/summary", params={"tenant_id": "nope"}, headers=root
    )
    assert r.status_code == 422
    assert (await api.client.get("/api/v1/dashboard/summary")).status_code == 401


async def test_concurrent_summaries_share_one_queue_depth_probe(api: Api) -> None:
    """A summary used to open a channel and declare every queue per request: under a load
    of dashboards that was most of their cost. Concurrent ones now share one probe."""
    _, op = await api.tenant_user("operator")
    deps = api.app.state.deps
    for _ in range(600):  # the lifespan connects in the background
        if deps.broker.is_connected:
            break
        await asyncio.sleep(0.05)
    probes = 0
    channel = deps.broker.connection.channel

    def counted_channel(*args: object, **kwargs: object) -> object:
        nonlocal probes
        probes += 1
        return channel(*args, **kwargs)

    deps.broker.connection.channel = counted_channel
    try:
        replies = await asyncio.gather(
            *(api.client.get("/api/v1/dashboard/summary", headers=op) for _ in range(8))
        )
    finally:
        deps.broker.connection.channel = channel
    assert all(r.status_code == 200 and r.json()["queues"]["rabbitmq"] for r in replies)
    assert probes == 1
