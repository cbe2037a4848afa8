"""Input Postgres cannot take (a NUL character, a cursor out of range) answers a 422 problem
naming the field, changes nothing, and never reaches the database as a 500."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from lookout_api.entrypoints.errors import install_error_handlers

from .conftest import Api

PROBLEM = "application/problem+json"


def raw_cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def assert_problem(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["detail"].startswith(field), r.json()


async def test_nul_in_any_text_input_answers_422_naming_the_field_not_500(
    api: Api, db: asyncpg.Pool
) -> None:
    # Without logging in: the login form itself.
    for form, field in (
        ({"username": "a\x00@example.com", "password": "x"}, "body.username"),
        ({"username": "root@example.com", "password": "pw\x00"}, "body.password"),
    ):
        assert_problem(await api.client.post("/api/v1/auth/token", data=form), field)
    root = await api.login("root@example.com")
    tenant, admin = await api.tenant_user("admin")
    s = await api.stream(admin, name="kept", tags=["a"])
    before = await db.fetch("SELECT * FROM streams ORDER BY id")
    tenants = await db.fetchval("SELECT count(*) FROM tenants")
    url = "rtsp://cam.example.com/x"
    writes: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/v1/tenants", {"name": "t\x00"}, "body.name"),
        ("POST", "/api/v1/streams", {"name": "n\x00", "url": url}, "body.name"),
        ("POST", "/api/v1/streams", {"name": "n", "url": url + "\x00"}, "body.url"),
        ("POST", "/api/v1/streams", {"name": "n", "url": url, "tags": ["\x00"]}, "body.tags"),
        ("PATCH", f"/api/v1/streams/{s['id']}", {"name": "n\x00"}, "body.name"),
        ("PATCH", f"/api/v1/streams/{s['id']}", {"tags": ["ok", "b\x00"]}, "body.tags"),
        (
            "POST",
            "/api/v1/streams:bulk",
            {"items": [{"id": s["id"], "name": "fine"}, {"name": "n\x00", "url": url}]},
            "body.items.1.name",
        ),
        ("POST", "/api/v1/api-keys", {"name": "k\x00", "role": "viewer"}, "body.name"),
        (
            "POST",
            "/api/v1/users",
            {"email": "u@example.com", "password": "p" * 12 + "\x00", "role": "viewer"},
            "body.password",
        ),
    ]
    for method, path, body, field in writes:
        headers = root if path.endswith("tenants") else admin
        r = await api.client.request(method, path, json=body, headers=headers)
        assert_problem(r, field)
    assert await db.fetch("SELECT * FROM streams ORDER BY id") == before
    assert await db.fetchval("SELECT count(*) FROM tenants") == tenants

    for name in ("q", "tag", "fields", "cursor", "sort", "undeclared"):
        r = await api.client.get("/api/v1/streams", params={name: "a\x00"}, headers=admin)
        assert_problem(r, f"query.{name}")
    r = await api.client.get(
        f"/api/v1/streams/{s['id']}/snapshots", params={"cursor": "\x00"}, headers=admin
    )
    assert_problem(r, "query.cursor")
    assert tenant


@pytest.mark.parametrize(
    "value",
    [
        "99999-01-01T00:00:00+00:00",
        "-0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        10**30,
        -1,
    ],
)
async def test_a_cursor_with_an_out_of_range_timestamp_answers_422_not_500(
    api: Api, value: object
) -> None:
    _, admin = await api.tenant_user("admin")
    s = await api.stream(admin)
    cursor = raw_cursor({"s": "-created_at", "v": value, "i": str(uuid.uuid4())})
    for path in ("/api/v1/streams", f"/api/v1/streams/{s['id']}/snapshots"):
        r = await api.client.get(path, params={"cursor": cursor}, headers=admin)
        assert_problem(r, "cursor:")


async def test_a_garbage_or_foreign_cursor_answers_422_not_500(api: Api) -> None:
    _, admin = await api.tenant_user("admin")
    for cursor, sort in (
        (base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), "-created_at"),
        ("!!!###", "-created_at"),
        (raw_cursor({"s": "name", "v": "a\x00", "i": str(uuid.uuid4())}), "name"),
        (raw_cursor({"s": "-created_at", "v": "2026-01-01T00:00:00Z", "i": 10**40}), "-created_at"),
    ):
        r = await api.client.get(
            "/api/v1/streams", params={"cursor": cursor, "sort": sort}, headers=admin
        )
        assert_problem(r, "cursor:")


async def test_a_value_postgres_refuses_still_answers_422_not_500(db: asyncpg.Pool) -> None:
    """The backstop behind validation: Postgres's own DataError (here its refusal of NUL)
    answers a 422 problem."""
    with pytest.raises(asyncpg.DataError) as refused:
        await db.fetchval("SELECT $1::text", "a\x00")
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/store")
    async def store() -> None:
        raise refused.value

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.get("/store")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "cannot be stored" in r.json()["detail"]
