"""Tenant quotas through the real app: the stream limit (also under concurrent creates),
the per-minute snapshot rate in Redis, and who may read and set them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from .conftest import Api, add_snapshot


async def _set(api: Api, tenant: str, **values: Any) -> Any:
    root = await api.login("root@example.com")
    r = await api.client.patch(f"/api/v1/tenants/{tenant}/quotas", json=values, headers=root)
    assert r.status_code == 200, r.text
    return r.json()


def _url() -> str:
    return f"rtsp://cam.example.com/{uuid.uuid4().hex}"


async def test_the_stream_limit_refuses_creates_past_it(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    await _set(api, tenant, max_streams=2)
    first = await api.stream(op, name="a")
    await api.stream(op, name="b")
    r = await api.client.post("/api/v1/streams", json={"name": "c", "url": _url()}, headers=op)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Quota exceeded"
    assert "at most 2 streams" in r.json()["detail"]

    bulk = "/api/v1/streams:bulk"
    r = await api.client.post(bulk, json={"items": [{"name": "d", "url": _url()}]}, headers=op)
    assert r.status_code == 403 and "0 more can be created, not 1" in r.json()["detail"]
    # Updates in bulk create nothing: they pass at the limit.
    update = {"items": [{"id": first["id"], "name": "a2"}]}
    r = await api.client.post(bulk, json=update, headers=op)
    assert r.status_code == 200, r.text
    assert await db.fetchval("SELECT count(*) FROM streams") == 2

    # Raising the limit makes room again; another tenant has its own (the default).
    await _set(api, tenant, max_streams=4)
    items = [{"name": f"e{i}", "url": _url()} for i in range(3)]
    r = await api.client.post(bulk, json={"items": items}, headers=op)
    assert r.status_code == 403 and "2 more can be created, not 3" in r.json()["detail"]
    r = await api.client.post(bulk, json={"items": items[:2]}, headers=op)
    assert r.status_code == 200, r.text
    _, other = await api.tenant_user("operator")
    await api.stream(other)


async def test_concurrent_creates_at_the_limit_never_pass_it(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    await _set(api, tenant, max_streams=3)
    await api.stream(op, name="already")

    async def create(i: int) -> int:
        r = await api.client.post(
            "/api/v1/streams", json={"name": f"s{i}", "url": _url()}, headers=op
        )
        return r.status_code

    async def bulk(i: int) -> int:
        items = [{"name": f"b{i}", "url": _url()}]
        r = await api.client.post("/api/v1/streams:bulk", json={"items": items}, headers=op)
        return r.status_code

    codes = await asyncio.gather(*(create(i) for i in range(6)), *(bulk(i) for i in range(4)))
    assert sorted(codes).count(403) == 8
    assert {c for c in codes if c != 403} <= {200, 201}
    assert await db.fetchval("SELECT count(*) FROM streams") == 3


@pytest.mark.api_settings(default_snapshot_requests_per_minute=3)
async def test_snapshot_requests_past_the_rate_get_429(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    a, b = await api.stream(op, name="a"), await api.stream(op, name="b")
    for stream in (a, a, b):  # a queued job, a joined one, another stream's: all count
        r = await api.client.post(f"/api/v1/streams/{stream['id']}/snapshots", headers=op)
        assert r.status_code == 202, r.text
    r = await api.client.post(f"/api/v1/streams/{b['id']}/snapshots", headers=op)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "at most 3 snapshots per minute" in r.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM snapshot_jobs") == 2

    # A fresh snapshot is still served (it costs nothing and is not counted).
    snap = await add_snapshot(api, db, a["id"], b"jpeg")
    url = f"/api/v1/streams/{a['id']}/snapshots"
    r = await api.client.post(url, params={"max_age": 60}, headers=op)
    assert r.status_code == 200 and r.json()["id"] == str(snap["id"])
    # Another tenant has its own counter.
    _, other = await api.tenant_user("operator")
    c = await api.stream(other)
    r = await api.client.post(f"/api/v1/streams/{c['id']}/snapshots", headers=other)
    assert r.status_code == 202
    # The usage is visible in the quotas.
    tenant = str(snap["tenant_id"])
    body = await _set(api, tenant)
    assert body["snapshot_requests_per_minute"] == {"limit": 3, "used": 4, "default": True}


@pytest.mark.api_settings(redis_url="redis://127.0.0.1:1/0")
async def test_the_snapshot_rate_fails_open_without_redis(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    await _set(api, tenant, snapshot_requests_per_minute=0)
    s = await api.stream(op)
    r = await api.client.post(f"/api/v1/streams/{s['id']}/snapshots", headers=op)
    assert r.status_code == 202, r.text
    root = await api.login("root@example.com")
    r = await api.client.get(f"/api/v1/tenants/{tenant}/quotas", headers=root)
    assert r.json()["snapshot_requests_per_minute"]["used"] is None


async def test_quotas_are_read_and_set_by_a_superuser(api: Api, db: asyncpg.Pool) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, op = await api.tenant_user("operator", tenant)
    await api.stream(op)
    root = await api.login("root@example.com")
    url = f"/api/v1/tenants/{tenant}/quotas"

    r = await api.client.get(url, headers=root)
    assert r.status_code == 200
    assert r.json() == {
        "tenant_id": tenant,
        "max_streams": {"limit": 10_000, "used": 1, "default": True},
        "snapshot_requests_per_minute": {"limit": 600, "used": 0, "default": True},
        "max_hot_streams": {"limit": 100, "used": 0, "default": True},
    }
    body = await _set(api, tenant, max_streams=5, snapshot_requests_per_minute=7)
    assert body["max_streams"] == {"limit": 5, "used": 1, "default": False}
    assert body["snapshot_requests_per_minute"]["limit"] == 7
    # Only the fields sent change; null goes back to the default.
    body = await _set(api, tenant, max_streams=None)
    assert body["max_streams"]["default"] is True
    assert body["snapshot_requests_per_minute"]["limit"] == 7
    row = await db.fetchrow(
        "SELECT max_streams, snapshot_requests_per_minute FROM tenants WHERE id = $1",
        uuid.UUID(tenant),
    )
    assert row is not None
    assert (row["max_streams"], row["snapshot_requests_per_minute"]) == (None, 7)
    audit = await db.fetch(
        "SELECT changes FROM audit_log WHERE action = 'tenant.quotas_updated' ORDER BY id"
    )
    assert audit[0]["changes"]["max_streams"] == {"from": None, "to": 5}
    assert len(audit) == 2

    # An admin reads their own, sets nothing; another tenant's quotas are 404.
    r = await api.client.get(url, headers=admin)
    assert r.status_code == 200 and r.json()["max_streams"]["used"] == 1
    r = await api.client.patch(url, json={"max_streams": 100}, headers=admin)
    assert r.status_code == 403
    assert (await api.client.get(url, headers=op)).status_code == 403
    _, other_admin = await api.tenant_user("admin")
    r = await api.client.get(url, headers=other_admin)
    assert r.status_code == 404
    r = await api.client.get(f"/api/v1/tenants/{uuid.uuid4()}/quotas", headers=root)
    assert r.status_code == 404
    r = await api.client.patch(
        f"/api/v1/tenants/{uuid.uuid4()}/quotas", json={"max_streams": 1}, headers=root
    )
    assert r.status_code == 404


async def test_bad_quota_values_are_problems_and_change_nothing(api: Api, db: asyncpg.Pool) -> None:
    tenant, _ = await api.tenant_user("admin")
    root = await api.login("root@example.com")
    url = f"/api/v1/tenants/{tenant}/quotas"
    for bad in (
        {"max_streams": -1},
        {"max_streams": "many"},
        {"max_streams": 1.5},
        {"max_streams": 10**9},
        {"snapshot_requests_per_minute": -5},
        {"burst": 3},
        [1, 2],
    ):
        r = await api.client.patch(url, json=bad, headers=root)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"], bad
    r = await api.client.patch(url, content=b"{not json", headers=root)
    assert r.status_code == 422
    r = await api.client.get("/api/v1/tenants/not-a-uuid/quotas", headers=root)
    assert r.status_code == 422
    row = await db.fetchrow("SELECT max_streams, snapshot_requests_per_minute FROM tenants")
    assert row is not None and tuple(row) == (None, None)
