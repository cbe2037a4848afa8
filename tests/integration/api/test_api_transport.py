"""Transport: body size limit (413), gzip over 1 KB, problem JSON, OpenAPI and docs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .conftest import Api


@pytest.mark.api_settings(max_body_bytes=4096)
async def test_oversized_bodies_are_413_problems(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    big = {"name": "x", "url": "rtsp://cam/" + "a" * 5000}
    r = await api.client.post("/api/v1/streams", json=big, headers=op)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert "4096 bytes" in r.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"a" * 1000

    r = await api.client.post(
        "/api/v1/streams", content=chunks(), headers={**op, "Content-Type": "application/json"}
    )
    assert r.status_code == 413


async def test_gzip_over_one_kilobyte_only(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    s = await api.stream(op)
    small = await api.client.get(
        f"/api/v1/streams/{s['id']}", headers={**op, "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers
    for i in range(10):
        await api.stream(op, name=f"cam {i}")
    big = await api.client.get("/api/v1/streams", headers={**op, "Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip" and len(big.json()["items"]) == 11


async def test_openapi_and_docs(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/api-keys",
        "/api/v1/streams",
        "/api/v1/streams/{stream_id}",
        "/api/v1/streams:bulk",
        "/api/v1/audit",
    ):
        assert path in paths, path
    patch = paths["/api/v1/streams/{stream_id}"]["patch"]
    assert {"401", "403", "404", "412", "422"} <= set(patch["responses"])
    assert "application/problem+json" in patch["responses"]["412"]["content"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_unknown_route_and_method_are_problems(api: Api) -> None:
    r = await api.client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    _, op = await api.tenant_user("viewer")
    r = await api.client.put("/api/v1/streams", headers=op)
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
