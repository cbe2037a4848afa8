"""Tenant isolation (BOLA), role checks (BFLA) and token attacks, through the real app."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from lookout_shared.settings import DEV_JWT_SECRET

from .conftest import Api


async def test_another_tenants_stream_is_404_everywhere(api: Api) -> None:
    alice_tenant, alice = await api.tenant_user("admin")
    _, bob = await api.tenant_user("admin")
    secret = await api.stream(alice, name="alice-secret-cam", tags=["hidden"])
    sid = secret["id"]
    etag = f'"{sid}.1"'

    assert (await api.client.get(f"/api/v1/streams/{sid}", headers=bob)).status_code == 404
    r = await api.client.patch(
        f"/api/v1/streams/{sid}", json={"name": "x"}, headers={**bob, "If-Match": etag}
    )
    assert r.status_code == 404 and r.json()["detail"] == "no such stream"
    r = await api.client.delete(f"/api/v1/streams/{sid}", headers=bob)
    assert r.status_code == 404
    r = await api.client.post(f"/api/v1/streams/{sid}/snapshots", headers=bob)
    assert r.status_code == 404
    r = await api.client.get(f"/api/v1/streams/{sid}/snapshots/latest/image", headers=bob)
    assert r.status_code == 404

    for params in ({}, {"q": "alice"}, {"tag": "hidden"}, {"sort": "name"}, {"page": 1}):
        r = await api.client.get("/api/v1/streams", params=params, headers=bob)
        assert r.status_code == 200 and r.json()["items"] == [], params
        assert r.json()["total"] == 0, params
    # Naming the other tenant explicitly is refused, not honoured.
    r = await api.client.get("/api/v1/streams", params={"tenant_id": alice_tenant}, headers=bob)
    assert r.status_code == 403

    counts = (await api.client.get("/api/v1/counts", headers=bob)).json()
    assert counts["scope"] != alice_tenant

    r = await api.client.post(
        "/api/v1/streams:bulk", json={"items": [{"id": sid, "name": "stolen"}]}, headers=bob
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["body", "items", 0, "id"], "msg": "no such stream", "status": 404}
    ]
    audit = (await api.client.get("/api/v1/audit", headers=bob)).json()["items"]
    assert all(e["entity_id"] != sid for e in audit)

    # Nothing changed for the owner.
    got = (await api.client.get(f"/api/v1/streams/{sid}", headers=alice)).json()
    assert got["name"] == "alice-secret-cam" and got["version"] == 1


async def test_bola_on_users_and_api_keys(api: Api) -> None:
    _, alice = await api.tenant_user("admin")
    _, bob = await api.tenant_user("admin")
    key = (
        await api.client.post(
            "/api/v1/api-keys", json={"name": "cam-bot", "role": "viewer"}, headers=alice
        )
    ).json()
    assert (
        await api.client.delete(f"/api/v1/api-keys/{key['id']}", headers=bob)
    ).status_code == 404
    assert (await api.client.get("/api/v1/api-keys", headers=bob)).json()["items"] == []
    me = (await api.client.get("/api/v1/users/me", headers=alice)).json()
    assert (await api.client.delete(f"/api/v1/users/{me['id']}", headers=bob)).status_code == 404
    r = await api.client.post(
        "/api/v1/users",
        json={
            "email": "intruder@example.com",
            "password": "correct-horse-battery",
            "role": "admin",
            "tenant_id": me["tenant_id"],
        },
        headers=bob,
    )
    assert r.status_code == 403


async def test_viewer_cannot_write(api: Api) -> None:
    tenant, operator = await api.tenant_user("operator")
    _, viewer = await api.tenant_user("viewer", tenant)
    sid = (await api.stream(operator))["id"]
    writes = [
        ("POST", "/api/v1/streams", {"name": "v", "url": "rtsp://cam/v"}),
        ("PATCH", f"/api/v1/streams/{sid}", {"name": "v"}),
        ("DELETE", f"/api/v1/streams/{sid}", None),
        ("POST", f"/api/v1/streams/{sid}/snapshots", None),
        ("POST", "/api/v1/streams:bulk", {"items": [{"name": "v", "url": "rtsp://cam/v"}]}),
        ("POST", "/api/v1/api-keys", {"name": "k", "role": "viewer"}),
    ]
    for method, path, body in writes:
        r = await api.client.request(method, path, json=body, headers=viewer)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert (await api.client.get(f"/api/v1/streams/{sid}", headers=viewer)).status_code == 200


async def test_operator_cannot_manage_users_and_only_superusers_create_tenants(api: Api) -> None:
    tenant, operator = await api.tenant_user("operator")
    _, admin = await api.tenant_user("admin", tenant)
    new_user = {"email": "x@example.com", "password": "correct-horse-battery", "role": "viewer"}
    assert (
        await api.client.post("/api/v1/users", json=new_user, headers=operator)
    ).status_code == 403
    assert (await api.client.get("/api/v1/users", headers=operator)).status_code == 403
    assert (await api.client.get("/api/v1/audit", headers=operator)).status_code == 403
    for headers in (operator, admin):
        r = await api.client.post("/api/v1/tenants", json={"name": "mine"}, headers=headers)
        assert r.status_code == 403
        assert "superuser role" in r.json()["detail"]
    # An admin manages users in its own tenant, never above its own role.
    assert (await api.client.post("/api/v1/users", json=new_user, headers=admin)).status_code == 201
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "admin"}, headers=operator
    )
    assert r.status_code == 403


# Token attacks ------------------------------------------------------------------------------


def _claims(user: dict[str, Any], **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": user["id"],
        "tid": user["tenant_id"],
        "role": user["role"],
        "iss": "lookout",
        "aud": "lookout",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not ...}


def _unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key="", algorithm="none")


async def test_token_attacks_answer_401(api: Api) -> None:
    _, viewer = await api.tenant_user("viewer")
    user = (await api.client.get("/api/v1/users/me", headers=viewer)).json()
    good = _claims(user)
    assert api.settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    secret = DEV_JWT_SECRET

    # The control: a token we sign ourselves the right way is accepted.
    valid = jwt.encode(good, secret, algorithm="HS256")
    assert (await api.client.get("/api/v1/streams", headers=_bearer(valid))).status_code == 200

    real = viewer["Authorization"].removeprefix("Bearer ")
    head, _, sig = real.split(".")
    # The real token's header and signature around a payload that claims more power.
    forged = {"sub": user["id"], "tid": None, "role": "superuser", "iss": "lookout"}
    forged |= {"aud": "lookout", "exp": 9_999_999_999}
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    attacks = {
        "alg none": _unsigned(good),
        "wrong key": jwt.encode(good, "another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
        "expired": jwt.encode(
            _claims(user, exp=datetime.now(UTC) - timedelta(seconds=5)), secret, algorithm="HS256"
        ),
        "missing exp": jwt.encode(_claims(user, exp=...), secret, algorithm="HS256"),
        "wrong aud": jwt.encode(_claims(user, aud="someone-else"), secret, algorithm="HS256"),
        "wrong iss": jwt.encode(_claims(user, iss="evil"), secret, algorithm="HS256"),
        "forged role claim": f"{head}.{forged_body}.{sig}",
        "HS512 instead of HS256": jwt.encode(good, secret, algorithm="HS512"),
        "unknown role": jwt.encode(_claims(user, role="root"), secret, algorithm="HS256"),
        "tenant role without a tenant": jwt.encode(_claims(user, tid=None), secret, "HS256"),
        "garbage": "not.a.token",
        "unknown API key": "lk_" + "A" * 43,
    }
    for name, token in attacks.items():
        for path in ("/api/v1/streams", "/api/v1/tenants"):
            method = "GET" if path.endswith("streams") else "POST"
            r = await api.client.request(
                method,
                path,
                json={"name": "x"} if method == "POST" else None,
                headers=_bearer(token),
            )
            assert r.status_code == 401, (name, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"] == "Bearer"


async def test_tenantless_token_of_a_tenant_role_reads_no_tenant(api: Api) -> None:
    """Only a superuser acts without a tenant: a viewer or admin token signed with the real
    secret but naming no tenant once read every tenant's streams."""
    _, alice = await api.tenant_user("admin")
    await api.stream(alice, name="alice-cam")
    user = (await api.client.get("/api/v1/users/me", headers=alice)).json()
    secret = api.settings.jwt_secret.get_secret_value()
    for role in ("viewer", "operator", "admin"):
        token = _bearer(jwt.encode(_claims(user, tid=None, role=role), secret, "HS256"))
        for path in ("/api/v1/streams", "/api/v1/counts", "/api/v1/dashboard/summary"):
            r = await api.client.get(path, headers=token)
            assert r.status_code == 401, (role, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_superuser_sees_every_tenant_but_must_name_one_to_write(api: Api) -> None:
    tenant, operator = await api.tenant_user("operator")
    await api.stream(operator, name="one")
    root = await api.login("root@example.com")
    listing = (await api.client.get("/api/v1/streams", headers=root)).json()
    assert [s["name"] for s in listing["items"]] == ["one"]
    r = await api.client.post(
        "/api/v1/streams", json={"name": "two", "url": "rtsp://cam/2"}, headers=root
    )
    assert r.status_code == 422 and "tenant_id" in r.json()["detail"]
    r = await api.client.post(
        "/api/v1/streams",
        json={"name": "two", "url": "rtsp://cam/2", "tenant_id": str(uuid.uuid4())},
        headers=root,
    )
    assert r.status_code == 404
    r = await api.client.post(
        "/api/v1/streams",
        json={"name": "two", "url": "rtsp://cam/2", "tenant_id": tenant},
        headers=root,
    )
    assert r.status_code == 201
