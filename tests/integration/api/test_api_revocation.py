"""Revocation: a deleted, disabled or demoted account loses every write and every read of
accounts, keys, audit and quotas at once, on every api process; its API keys stop working
at once everywhere; stream reads keep trusting a token until it expires (the documented
window)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from lookout_api.adapters.api_key_cache import APPLICATION_NAME
from lookout_api.bootstrap import Deps
from lookout_api.domain import api_keys
from lookout_api.entrypoints.http import create_app

from .conftest import Api

# How long a notification may take to reach another process on a loaded machine.
BOUND_SECONDS = 5.0


async def listening(deps: Deps) -> None:
    """Wait until the process listens for principal changes (its key cache is trusted)."""
    assert deps.principal_changes is not None
    await asyncio.wait_for(deps.principal_changes.connected.wait(), 10)


async def until_status(call: Any, status: int) -> float:
    """Seconds until ``call()`` answers ``status``, polled; fails past the bound."""
    started = time.monotonic()
    while True:
        r = await call()
        if r.status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < BOUND_SECONDS, r.text
        await asyncio.sleep(0.01)


def refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def me(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    r = await api.client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_deleted_admins_token_can_no_longer_write_nor_read_accounts(api: Api) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, operator = await api.tenant_user("operator", tenant)
    stream = await api.stream(admin)
    victim = await me(api, operator)
    root = await api.login("root@example.com")
    gone = await me(api, admin)
    r = await api.client.delete(f"/api/v1/users/{gone['id']}", headers=root)
    assert r.status_code == 204

    user = {"email": "mint@example.com", "password": "a-long-password", "role": "admin"}
    refused(await api.client.post("/api/v1/users", json=user, headers=admin))
    refused(await api.client.delete(f"/api/v1/users/{victim['id']}", headers=admin))
    refused(await api.client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin))
    refused(
        await api.client.post(
            "/api/v1/streams", json={"name": "x", "url": "rtsp://cam/x"}, headers=admin
        )
    )
    refused(
        await api.client.patch(
            f"/api/v1/streams/{stream['id']}", json={"name": "renamed"}, headers=admin
        )
    )
    refused(await api.client.delete(f"/api/v1/streams/{stream['id']}", headers=admin))
    refused(await api.client.post(f"/api/v1/streams/{stream['id']}/snapshots", headers=admin))
    for path in ("/api/v1/users", "/api/v1/users/me", "/api/v1/api-keys", "/api/v1/audit"):
        refused(await api.client.get(path, headers=admin))
    refused(await api.client.get(f"/api/v1/tenants/{tenant}/quotas", headers=admin))
    # Nothing was written: the operator is still there, no user was minted.
    assert (await me(api, operator))["id"] == victim["id"]
    r = await api.client.get("/api/v1/users", headers=root)
    assert "mint@example.com" not in {u["email"] for u in r.json()["items"]}
    # Stream reads trust the token until it expires (LOOKOUT_ACCESS_TOKEN_MINUTES).
    assert (await api.client.get("/api/v1/streams", headers=admin)).status_code == 200
    r = await api.client.get(f"/api/v1/streams/{stream['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["name"] == stream["name"]


async def test_every_write_route_refuses_a_deleted_users_token(api: Api) -> None:
    """Every route but reads, including any added later, checks the account first."""
    _, admin = await api.tenant_user("admin")
    root = await api.login("root@example.com")
    gone = await me(api, admin)
    assert (await api.client.delete(f"/api/v1/users/{gone['id']}", headers=root)).status_code
    operations = [
        (method.upper(), path, "security" in operation)
        for path, methods in api.app.openapi()["paths"].items()
        for method, operation in methods.items()
        if method.upper() not in {"GET", "HEAD", "OPTIONS"}
    ]
    assert [(m, p) for m, p, secured in operations if not secured] == [
        ("POST", "/api/v1/auth/token")
    ]
    writes = [(m, p) for m, p, secured in operations if secured]
    assert len(writes) >= 11, writes
    for method, template in writes:
        path = template.format_map({k: uuid.uuid4() for k in _params(template)})
        r = await api.client.request(method, path, json={}, headers=admin)
        assert r.status_code == 401, (method, template, r.text)


def _params(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{")]


async def test_demoted_or_disabled_account_loses_its_power_at_once(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, other = await api.tenant_user("admin", tenant)
    account = await me(api, admin)
    user = {"email": "new@example.com", "password": "a-long-password", "role": "viewer"}
    # An operator lowers the admin to viewer (there is no api for it: by hand, in SQL).
    await db.execute("UPDATE users SET role = 'viewer' WHERE id = $1", uuid.UUID(account["id"]))
    r = await api.client.post("/api/v1/users", json=user, headers=admin)
    refused(r)
    assert "log in again" in r.json()["detail"]
    refused(await api.client.get("/api/v1/users", headers=admin))
    # Logged in again, the token carries the new role: a viewer may not create users.
    viewer = await api.login(account["email"])
    assert (await api.client.post("/api/v1/users", json=user, headers=viewer)).status_code == 403

    # A disabled account: refused at once, and it cannot log in.
    other_account = await me(api, other)
    await db.execute(
        "UPDATE users SET disabled_at = now() WHERE id = $1", uuid.UUID(other_account["id"])
    )
    refused(await api.client.post("/api/v1/users", json=user, headers=other))
    r = await api.client.post(
        "/api/v1/auth/token",
        data={"username": other_account["email"], "password": "correct-horse-battery"},
    )
    assert r.status_code == 401


async def test_account_moved_to_another_tenant_loses_its_power_at_once(
    api: Api, db: asyncpg.Pool
) -> None:
    _, admin = await api.tenant_user("admin")
    elsewhere, _ = await api.tenant_user("viewer")
    account = await me(api, admin)
    await db.execute(
        "UPDATE users SET tenant_id = $2 WHERE id = $1",
        uuid.UUID(account["id"]),
        uuid.UUID(elsewhere),
    )
    # The token still names the old tenant: no write there, no read of its accounts.
    refused(
        await api.client.post(
            "/api/v1/streams", json={"name": "x", "url": "rtsp://c/x"}, headers=admin
        )
    )
    refused(await api.client.get("/api/v1/users", headers=admin))


async def test_password_change_ends_older_tokens_writes(api: Api, db: asyncpg.Pool) -> None:
    _, admin = await api.tenant_user("admin")
    account = await me(api, admin)
    await db.execute(
        "UPDATE users SET password_hash = password_hash || '' WHERE id = $1",
        uuid.UUID(account["id"]),
    )  # the same hash: not a change, the token stays good
    assert (await api.client.get("/api/v1/users", headers=admin)).status_code == 200
    await db.execute(
        "UPDATE users SET password_hash = 'another' WHERE id = $1", uuid.UUID(account["id"])
    )
    refused(await api.client.get("/api/v1/users", headers=admin))


async def test_key_of_a_demoted_creator_stops_at_once(api: Api, db: asyncpg.Pool) -> None:
    _, admin = await api.tenant_user("admin")
    await listening(api.app.state.deps)
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "admin"}, headers=admin
    )
    machine = {"Authorization": f"Bearer {r.json()['secret']}"}
    assert (await api.client.get("/api/v1/streams", headers=machine)).status_code == 200
    account = await me(api, admin)
    await db.execute("UPDATE users SET role = 'operator' WHERE id = $1", uuid.UUID(account["id"]))
    # Nobody keeps, through a key, a role they no longer hold: reads and writes alike.
    await until_status(lambda: api.client.get("/api/v1/streams", headers=machine), 401)
    refused(await api.client.get("/api/v1/users", headers=machine))


async def test_key_revoked_in_sql_elsewhere_is_refused_at_once(api: Api, db: asyncpg.Pool) -> None:
    _, admin = await api.tenant_user("admin")
    await listening(api.app.state.deps)
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=admin
    )
    key = r.json()
    machine = {"Authorization": f"Bearer {key['secret']}"}
    assert (await api.client.get("/api/v1/streams", headers=machine)).status_code == 200
    # Cached: the next read of this process asks no query.
    assert api.app.state.deps.key_cache.get(api_keys.digest(key["secret"]))[0]
    await db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key["id"])
    took = await until_status(lambda: api.client.get("/api/v1/streams", headers=machine), 401)
    print(f"revoked key refused after {took * 1000:.1f} ms")


@contextlib.asynccontextmanager
async def second_process(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """Another api app on the same Postgres and Redis, with connections of its own."""
    app = create_app(api.settings)
    async with app.router.lifespan_context(app):
        await listening(app.state.deps)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api-b") as client:
            yield client


async def test_deletion_on_one_process_is_refused_on_another_at_once(api: Api) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, operator = await api.tenant_user("operator", tenant)
    await listening(api.app.state.deps)
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "operator"}, headers=admin
    )
    machine = {"Authorization": f"Bearer {r.json()['secret']}"}
    victim = await me(api, operator)
    async with second_process(api) as other:
        # The other process knows the key (cached) and the token (verified) already.
        for _ in range(2):
            assert (await other.get("/api/v1/streams", headers=machine)).status_code == 200
        assert (await other.get("/api/v1/users", headers=admin)).status_code == 200
        root = await api.login("root@example.com")
        gone = await me(api, admin)
        assert (
            await api.client.delete(f"/api/v1/users/{gone['id']}", headers=root)
        ).status_code == 204
        # The token's writes and account reads: refused there at once, no polling.
        refused(await other.delete(f"/api/v1/users/{victim['id']}", headers=admin))
        refused(await other.get("/api/v1/users", headers=admin))
        # The key went with its creator: a key write at once, key reads within the bound.
        refused(
            await other.post(
                "/api/v1/streams", json={"name": "x", "url": "rtsp://cam/x"}, headers=machine
            )
        )
        took = await until_status(lambda: other.get("/api/v1/streams", headers=machine), 401)
        print(f"deleted user's key refused on the other process after {took * 1000:.1f} ms")
        # The key is refused on the deleting process too.
        r = await api.client.get("/api/v1/streams", headers=machine)
        refused(r)
    assert (await me(api, operator))["id"] == victim["id"]


@pytest.mark.api_settings(api_key_cache_seconds=60)
async def test_key_cache_is_bypassed_while_the_listener_is_down(api: Api, db: asyncpg.Pool) -> None:
    deps: Deps = api.app.state.deps
    _, admin = await api.tenant_user("admin")
    await listening(deps)
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=admin
    )
    key = r.json()
    machine = {"Authorization": f"Bearer {key['secret']}"}
    assert (await api.client.get("/api/v1/streams", headers=machine)).status_code == 200
    # The listener's connection dies: until it is back, no cached lookup is trusted.
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    assert killed == 1
    assert deps.principal_changes is not None
    started = time.monotonic()
    while deps.key_cache.trusted:
        assert time.monotonic() - started < BOUND_SECONDS
        await asyncio.sleep(0.01)
    await db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key["id"])
    refused(await api.client.get("/api/v1/streams", headers=machine))
    await listening(deps)  # it reconnects by itself
