"""``lookout-api`` as its own process, for the REST write rows of ``bench_notifier``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.notifier_servers import ROOT, free_port

API_PASSWORD = secrets.token_urlsafe(16)  # of the superuser and operator this run creates


@dataclass
class Api:
    """``lookout-api`` as its own process, with an operator of a tenant of this run."""

    client: httpx.AsyncClient
    tenant: uuid.UUID
    email: str
    # How long each PATCH took to be answered: the api's share of REST write → frame.
    answered: list[float] = field(default_factory=list)

    async def login(self) -> None:
        # A fresh access token for each scenario: they outlive one token's 15 minutes.
        self.client.headers["Authorization"] = await _token(self.client, self.email)

    async def create_streams(self, n: int) -> list[uuid.UUID]:
        items = [{"name": f"cam-{i}", "url": f"rtsp://cam.example.com/{i}"} for i in range(n)]
        r = await self.client.post("/api/v1/streams:bulk", json={"items": items})
        r.raise_for_status()
        return [uuid.UUID(item["stream"]["id"]) for item in r.json()["items"]]

    async def rename(self, stream: uuid.UUID, name: str) -> None:
        started = time.perf_counter()
        r = await self.client.patch(f"/api/v1/streams/{stream}", json={"name": name})
        self.answered.append(time.perf_counter() - started)
        r.raise_for_status()


async def _token(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": API_PASSWORD})
    r.raise_for_status()
    return f"Bearer {r.json()['access_token']}"


@contextlib.asynccontextmanager
async def run_api() -> AsyncIterator[Api]:
    port = free_port()
    env = {
        **os.environ,
        "LOOKOUT_API_PORT": str(port),
        "LOOKOUT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOOKOUT_LOG_LEVEL": "WARNING",
        "LOOKOUT_SUPERUSER_PASSWORD": API_PASSWORD,
    }
    script = str(Path(sys.executable).parent / "lookout-api")
    root = f"root-{uuid.uuid4().hex[:8]}@example.com"
    created = await asyncio.create_subprocess_exec(
        script, "create-superuser", root, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    if await created.wait() != 0:
        raise RuntimeError("lookout-api create-superuser failed")
    process = await asyncio.create_subprocess_exec(script, env=env, cwd=ROOT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await _api_ready(client, process)
            superuser = {"Authorization": await _token(client, root)}
            r = await client.post(
                "/api/v1/tenants", json={"name": f"bench-{uuid.uuid4().hex[:8]}"}, headers=superuser
            )
            r.raise_for_status()
            tenant = uuid.UUID(r.json()["id"])
            email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
            user = {
                "email": email,
                "password": API_PASSWORD,
                "role": "operator",
                "tenant_id": str(tenant),
            }
            (await client.post("/api/v1/users", json=user, headers=superuser)).raise_for_status()
            yield Api(client, tenant, email)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _api_ready(client: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if process.returncode is not None:
            raise RuntimeError(f"lookout-api exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("lookout-api did not become ready")
