"""The hot flag: set by operators through PATCH (the usual write path: version, ETag, event,
audit, cache), shown in reads, and held to a per-tenant quota that concurrent changes
cannot pass."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from .conftest import Api


async def _set(api: Api, tenant: str, **values: Any) -> Any:
    root = await api.login("root@example.com")
    r = await api.client.patch(f"/api/v1/tenants/{tenant}/quotas", json=values, headers=root)
    assert r.status_code == 200, r.text
    return r.json()


async def test_patch_hot_goes_through_the_write_path_and_shows_in_reads(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, op = await api.tenant_user("operator")
    _, viewer = await api.tenant_user("viewer", tenant)
    stream = await api.stream(op)
    assert (stream["hot"], stream["hot_mode"]) == (False, "keyframes")
    url = f"/api/v1/streams/{stream['id']}"
    cached = await api.client.get(url, headers=viewer)  # now in the read cache
    assert cached.json()["hot"] is False

    r = await api.client.patch(url, json={"hot": True, "hot_mode": "all"}, headers=op)
    assert r.status_code == 200, r.text
    assert (r.json()["hot"], r.json()["hot_mode"], r.json()["version"]) == (True, "all", 2)
    assert r.headers["etag"] == f'"{stream["id"]}.2"'
    read = await api.client.get(url, headers=viewer)
    assert (read.json()["hot"], read.json()["hot_mode"]) == (True, "all")
    listed = await api.client.get("/api/v1/streams", params={"fields": "hot,hot_mode"}, headers=op)
    assert listed.json()["items"] == [{"id": stream["id"], "hot": True, "hot_mode": "all"}]

    event = await db.fetchrow(
        "SELECT body FROM outbox WHERE message_type = 'stream.updated' ORDER BY id DESC LIMIT 1"
    )
    assert event is not None
    assert event["body"]["data"]["hot"] is True and event["body"]["data"]["hot_mode"] == "all"
    audit = await db.fetchval(
        "SELECT changes FROM audit_log WHERE action = 'stream.updated' ORDER BY id DESC LIMIT 1"
    )
    assert audit["hot"] == {"from": False, "to": True}

    # The same value again changes nothing; a viewer cannot write.
    again = await api.client.patch(url, json={"hot": True}, headers=op)
    assert again.json()["version"] == 2
    r = await api.client.patch(url, json={"hot": False}, headers=viewer)
    assert r.status_code == 403
    r = await api.client.patch(url, json={"hot_mode": "sometimes"}, headers=op)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await api.client.patch(url, json={"hot": "very"}, headers=op)
    assert r.status_code == 422


async def test_past_the_hot_quota_is_403_and_a_lower_limit_keeps_hot_streams(
    api: Api,
) -> None:
    tenant, op = await api.tenant_user("operator")
    await _set(api, tenant, max_hot_streams=1)
    first, second = await api.stream(op, "a"), await api.stream(op, "b")
    ok = await api.client.patch(f"/api/v1/streams/{first['id']}", json={"hot": True}, headers=op)
    assert ok.status_code == 200
    r = await api.client.patch(f"/api/v1/streams/{second['id']}", json={"hot": True}, headers=op)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert "at most 1 hot streams" in r.json()["detail"]
    # Changing something else of a hot stream is not another hot stream.
    r = await api.client.patch(
        f"/api/v1/streams/{first['id']}", json={"hot_mode": "all"}, headers=op
    )
    assert r.status_code == 200
    body = await _set(api, tenant, max_hot_streams=0)
    assert body["max_hot_streams"] == {"limit": 0, "used": 1, "default": False}
    off = await api.client.patch(f"/api/v1/streams/{first['id']}", json={"hot": False}, headers=op)
    assert off.status_code == 200
    body = await _set(api, tenant, max_hot_streams=None)
    assert body["max_hot_streams"] == {"limit": 100, "used": 0, "default": True}


@pytest.mark.api_settings(default_max_hot_streams=3)
async def test_concurrent_patches_never_pass_the_hot_quota(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    streams = [await api.stream(op, f"s{i}") for i in range(10)]

    async def heat(stream: dict[str, Any]) -> int:
        r = await api.client.patch(
            f"/api/v1/streams/{stream['id']}", json={"hot": True}, headers=op
        )
        return r.status_code

    codes = await asyncio.gather(*(heat(s) for s in streams))
    assert sorted(codes) == [200] * 3 + [403] * 7
    hot = await db.fetchval(
        "SELECT count(*) FROM streams WHERE tenant_id = $1::uuid AND hot", tenant
    )
    assert hot == 3
