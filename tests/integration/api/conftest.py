"""The api app in-process (lifespan and all) against the real test stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from lookout_api.entrypoints.http import create_app
from lookout_api.settings import ApiSettings

PASSWORD = "correct-horse-battery"


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: ApiSettings
    app: FastAPI

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        r = await self.client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def tenant_user(
        self, role: str, tenant_id: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """A user of ``role`` in ``tenant_id`` (a new tenant when None): (tenant id, headers)."""
        root = await self.login("root@example.com")
        if tenant_id is None:
            r = await self.client.post(
                "/api/v1/tenants", json={"name": f"t-{uuid.uuid4().hex[:8]}"}, headers=root
            )
            assert r.status_code == 201, r.text
            tenant_id = r.json()["id"]
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        r = await self.client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": role, "tenant_id": tenant_id},
            headers=root,
        )
        assert r.status_code == 201, r.text
        return tenant_id, await self.login(email)

    async def stream(self, headers: dict[str, str], name: str = "cam", **body: Any) -> Any:
        """Create a stream (an RTSP URL unless one is given); its JSON."""
        payload = {"name": name, "url": f"rtsp://cam.example.com/{uuid.uuid4().hex}", **body}
        r = await self.client.post("/api/v1/streams", json=payload, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
async def api(
    db: asyncpg.Pool, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Api]:
    media = tmp_path / "media"
    media.mkdir()
    # A key space per test: login rate limits and counts never leak between tests.
    values: dict[str, Any] = {
        "media_dir": str(media),
        "storage_dir": str(tmp_path / "snapshots"),
        "redis_prefix": f"t-{uuid.uuid4().hex[:8]}:",
    }
    settings = ApiSettings(**(values | overrides(request)))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        from lookout_api import handlers

        await handlers.create_user(
            app.state.deps, None, "root@example.com", PASSWORD, "superuser", None
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(client, settings, app)


def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test asks for with ``@pytest.mark.api_settings(name=value, ...)``."""
    marker = request.node.get_closest_marker("api_settings")
    return dict(marker.kwargs) if marker else {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "api_settings(**values): ApiSettings for the api fixture")


async def add_snapshot(
    api: Api, db: asyncpg.Pool, stream_id: str, data: bytes, age_seconds: float = 0
) -> dict[str, Any]:
    """Store a snapshot the way the worker does: the file content-addressed in storage, then
    a succeeded job and the snapshot row; ``age_seconds`` back-dates it. Its row as a dict."""
    from lookout_shared.storage import LocalStorage

    stored = await LocalStorage(api.settings.storage_dir).put(data, "image/jpeg")
    row = await db.fetchrow(
        """WITH job AS (
               INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, attempts, version,
                                          started_at, finished_at)
               SELECT gen_random_uuid(), tenant_id, id, 'succeeded', 1, 3, now(), now()
               FROM streams WHERE id = $1
               RETURNING id, tenant_id)
           INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key, content_type,
                                  size_bytes, sha256, width, height, created_at)
           SELECT gen_random_uuid(), job.tenant_id, $1, job.id, $2, $3, $4, $5, 320, 240,
                  clock_timestamp() - make_interval(secs => $6)
           FROM job RETURNING *""",
        uuid.UUID(stream_id),
        stored.key,
        stored.content_type,
        stored.size_bytes,
        stored.sha256,
        age_seconds,
    )
    assert row is not None
    return dict(row)
