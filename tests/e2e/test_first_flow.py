"""The first flow through all four services as OS processes:

operator creates a stream → requests a snapshot → 202 at once → the worker captures a frame
of a local test video with ffmpeg → the JPEG downloads over REST → the aggregator's count of
the tenant's snapshots rises by exactly one → a WebSocket subscriber of ``stream:<id>`` gets
``snapshot_job.succeeded``. Then the same while RabbitMQ is down: still 202, and the job
completes once RabbitMQ is back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from .conftest import BIN, PASSWORD, System

pytestmark = pytest.mark.e2e
# A superuser of this run's own: other tiers may have left users behind in the database.
ROOT_EMAIL = f"root-{uuid.uuid4().hex[:8]}@example.com"


def make_video(system: System) -> str:
    path = system.media / "camera.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=5",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path.as_uri()


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def operator_token(system: System, client: httpx.AsyncClient) -> tuple[str, str]:
    subprocess.run(
        [str(BIN / "lookout-api"), "create-superuser", ROOT_EMAIL],
        env=system.env,
        check=True,
        capture_output=True,
    )
    root = {"Authorization": f"Bearer {await login(client, ROOT_EMAIL, PASSWORD)}"}
    r = await client.post(
        "/api/v1/tenants", json={"name": f"e2e-{uuid.uuid4().hex[:6]}"}, headers=root
    )
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    email = f"op-{uuid.uuid4().hex[:6]}@example.com"
    r = await client.post(
        "/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": "operator", "tenant_id": tenant_id},
        headers=root,
    )
    assert r.status_code == 201, r.text
    return tenant_id, await login(client, email, PASSWORD)


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def job_done(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> Any:
    async def check() -> Any:
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        assert job["status"] != "failed", job
        return job if job["status"] == "succeeded" else None

    return await wait_for(check, 90, f"job {job_id} to succeed")


async def next_frame(ws: Any, frame_type: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {frame_type} frame")
        frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if frame.get("type") == frame_type:
            return dict(frame)


async def test_snapshot_flow_through_every_service(system: System) -> None:
    redis = Redis.from_url(system.env["LOOKOUT_REDIS_URL"])
    counts_key = None
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=10) as client:
        tenant_id, token = await operator_token(system, client)
        headers = {"Authorization": f"Bearer {token}"}
        counts_key = f"{system.env['LOOKOUT_REDIS_PREFIX']}counts:tenant:{tenant_id}"
        r = await client.post(
            "/api/v1/streams",
            json={"name": "Test camera", "url": make_video(system)},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        stream_id = r.json()["id"]

        async def snapshots_total() -> int:
            return int(await redis.hget(counts_key, "snapshots_total") or 0)

        ws_url = f"ws://127.0.0.1:{system.url('notifier').rsplit(':', 1)[1]}/ws?token={token}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "room": f"stream:{stream_id}"}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["op"] == "subscribed", ack
            before = await snapshots_total()

            started = time.monotonic()
            r = await client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=headers)
            assert r.status_code == 202, r.text
            assert time.monotonic() - started < 2  # answered without waiting for ffmpeg
            job_id = r.json()["job_id"]

            job = await job_done(client, headers, job_id)
            image = await client.get(
                f"/api/v1/snapshots/{job['snapshot_id']}/image", headers=headers
            )
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/jpeg"
            assert image.content[:2] == b"\xff\xd8" and len(image.content) > 1000

            await wait_for(lambda: _equals(snapshots_total, before + 1), 30, "the snapshot count")
            frame = await next_frame(ws, "snapshot_job.succeeded")
            assert frame["room"] == f"stream:{stream_id}"
            assert frame["data"]["snapshot_id"] == job["snapshot_id"]
            await asyncio.sleep(1)  # late duplicates would show here
            assert await snapshots_total() == before + 1

        # RabbitMQ down: the request still answers 202; the command waits in the outbox.
        system.stack("stop-rabbitmq")
        try:
            r = await client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=headers)
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            await asyncio.sleep(2)
            job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
            assert job["status"] == "queued"
        finally:
            system.stack("start-rabbitmq")
        await job_done(client, headers, job_id)
        await wait_for(lambda: _equals(snapshots_total, before + 2), 60, "the second count")
    await redis.aclose()


async def _equals(read: Any, expected: int) -> bool:
    return bool(await read() == expected)
