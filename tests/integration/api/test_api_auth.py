"""API keys, the login rate limit, revocation bounds, and bad stream URLs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from .conftest import PASSWORD, Api


async def test_api_key_is_shown_once_works_and_is_revoked(api: Api, db: asyncpg.Pool) -> None:
    _, admin = await api.tenant_user("admin")
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "ingest", "role": "operator"}, headers=admin
    )
    assert r.status_code == 201, r.text
    key = r.json()
    secret = key["secret"]
    assert secret.startswith("lk_") and key["prefix"] == secret[:10]
    stored = await db.fetchrow("SELECT * FROM api_keys WHERE id = $1", key["id"])
    assert stored is not None
    assert secret.encode() not in bytes(stored["secret_hash"]) and len(stored["secret_hash"]) == 32
    listed = (await api.client.get("/api/v1/api-keys", headers=admin)).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]

    machine = {"Authorization": f"Bearer {secret}"}
    s = await api.stream(machine, name="from a key")
    audit = await db.fetchrow(
        "SELECT actor_kind, api_key_id FROM audit_log WHERE entity_id = $1", s["id"]
    )
    assert audit is not None
    assert (audit["actor_kind"], str(audit["api_key_id"])) == ("api_key", key["id"])
    # The key acts with its own role, not its creator's.
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "viewer"}, headers=machine
    )
    assert r.status_code == 403

    r = await api.client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    # The revoking process forgets the key at once.
    r = await api.client.get("/api/v1/streams", headers=machine)
    assert r.status_code == 401 and r.json()["detail"] == "the API key is unknown or revoked"


async def test_deleting_a_user_removes_their_keys_and_login(api: Api) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, operator = await api.tenant_user("operator", tenant)
    me = (await api.client.get("/api/v1/users/me", headers=operator)).json()
    key = (
        await api.client.post(
            "/api/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=admin
        )
    ).json()
    admin_me = (await api.client.get("/api/v1/users/me", headers=admin)).json()
    assert (
        await api.client.delete(f"/api/v1/users/{admin_me['id']}", headers=admin)
    ).status_code == 409
    root = await api.login("root@example.com")
    assert (await api.client.delete(f"/api/v1/users/{me['id']}", headers=admin)).status_code == 204
    assert (
        await api.client.delete(f"/api/v1/users/{admin_me['id']}", headers=root)
    ).status_code == 204
    # Their keys went with them.
    r = await api.client.get(
        "/api/v1/streams", headers={"Authorization": f"Bearer {key['secret']}"}
    )
    assert r.status_code == 401
    r = await api.client.post(
        "/api/v1/auth/token", data={"username": me["email"], "password": PASSWORD}
    )
    assert r.status_code == 401
    # An access token already issued reads streams until its expiry; /users/me checks the
    # account (test_api_revocation covers the rest).
    assert (await api.client.get("/api/v1/users/me", headers=operator)).status_code == 401


@contextlib.asynccontextmanager
async def client_at(api: Api, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``address`` (a loopback address) as the api sees it."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


def limited(r: httpx.Response, fragment: str, window: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= window
    assert fragment in r.json()["detail"], r.json()["detail"]


async def test_failed_logins_from_one_address_never_lock_the_owner_out(api: Api) -> None:
    email, window = "root@example.com", api.settings.login_email_window_seconds
    async with client_at(api, "127.0.0.2") as stranger, client_at(api, "127.0.0.3") as owner:
        for _ in range(10):
            assert (await log_in(stranger, email, "wrong-wrong")).status_code == 401
        # The stranger's address is limited, even with the right password...
        limited(await log_in(stranger, email, PASSWORD), "from this address", window)
        # ...and the owner, elsewhere, logs in.
        assert (await log_in(owner, email, PASSWORD)).status_code == 200


@pytest.mark.api_settings(login_client_failure_limit=3, login_email_failure_limit=5)
async def test_failures_spread_over_addresses_slow_only_the_failing_ones(api: Api) -> None:
    email, window = "root@example.com", api.settings.login_email_window_seconds
    async with (
        client_at(api, "127.0.0.2") as a,
        client_at(api, "127.0.0.3") as b,
        client_at(api, "127.0.0.4") as c,
        client_at(api, "127.0.0.5") as d,
    ):
        for client, failures in ((a, 3), (c, 2)):
            for _ in range(failures):
                assert (await log_in(client, email, "wrong-wrong")).status_code == 401
        limited(await log_in(a, email, PASSWORD), "from this address", window)
        # Five failures for the account in all: an address that failed waits...
        limited(await log_in(c, email, PASSWORD), "many addresses", window)
        # ...one that did not still tries, and logs in with the right password.
        assert (await log_in(b, email, PASSWORD)).status_code == 200
        assert (await log_in(d, email, "wrong-wrong")).status_code == 401
        limited(await log_in(d, email, "wrong-wrong"), "many addresses", window)


@pytest.mark.api_settings(login_ip_limit=8)
async def test_attempts_per_address_are_limited_whatever_the_account(api: Api) -> None:
    codes = []
    for n in range(10):
        r = await log_in(api.client, f"nobody-{n}@example.com", "x" * 12)
        codes.append(r.status_code)
    assert codes == [401] * 8 + [429] * 2
    limited(r, "from this address", api.settings.login_ip_window_seconds)
    async with client_at(api, "127.0.0.7") as elsewhere:
        assert (await log_in(elsewhere, "root@example.com", PASSWORD)).status_code == 200


BAD_URLS = [
    ("file:///etc/passwd", "media directory"),
    ("-i foo", "must not start with '-'"),
    ("concat:a.mp4|b.mp4", "scheme 'concat' is not allowed"),
    ("data:text/plain;base64,AAAA", "scheme 'data' is not allowed"),
    ("rtsp://cam.example.com/" + "a" * 10_000, "2048"),
    ("rtsp://cam.example.com/a b", "whitespace"),
    ("gopher://cam/x", "not allowed"),
]


@pytest.mark.api_settings(media_dir=None)
async def test_bad_urls_are_422_and_store_nothing(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    sid = (await api.stream(op))["id"]
    before = await db.fetchval("SELECT count(*) FROM outbox")
    for url, fragment in BAD_URLS:
        r = await api.client.post("/api/v1/streams", json={"name": "x", "url": url}, headers=op)
        assert r.status_code == 422, (url, r.text)
        assert fragment in r.json()["detail"], (url, r.json()["detail"])
        r = await api.client.patch(f"/api/v1/streams/{sid}", json={"url": url}, headers=op)
        assert r.status_code == 422, (url, r.text)
        r = await api.client.post(
            "/api/v1/streams:bulk", json={"items": [{"name": "x", "url": url}]}, headers=op
        )
        assert r.status_code == 422, (url, r.text)
    assert await db.fetchval("SELECT count(*) FROM streams") == 1
    assert await db.fetchval("SELECT version FROM streams") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == before


async def test_file_urls_only_inside_the_media_dir(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    assert api.settings.media_dir is not None
    inside = f"file://{api.settings.media_dir}/cam.mp4"
    assert (await api.stream(op, url=inside))["kind"] == "file"
    r = await api.client.post(
        "/api/v1/streams",
        json={"name": "x", "url": f"file://{api.settings.media_dir}/../escape.mp4"},
        headers=op,
    )
    assert r.status_code == 422 and "inside the media directory" in r.json()["detail"]
