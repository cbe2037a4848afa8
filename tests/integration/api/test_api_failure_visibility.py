"""What a failure and a stream URL reveal, and to whom: viewers learn a failure's category,
never the camera's host or path; nobody reads a credential from a URL's query string, in a
response or in the audit log."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_snapshot_worker.bootstrap import build_deps
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.settings import WorkerSettings

from .conftest import Api

SECRETS = ("hunter2", "s3cretTok")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by nobody who listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_query_string_credentials_are_masked_in_responses_and_the_audit_log(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, operator = await api.tenant_user("operator")
    _, admin = await api.tenant_user("admin", tenant)
    url = "rtsp://127.0.0.1:9/live?token=s3cretTok&channel=1"
    created = await api.stream(operator, url=url)
    assert created["url"] == "rtsp://127.0.0.1:9/live?token=***&channel=1"
    for _ in range(2):  # the second read comes from the read cache
        got = (await api.client.get(f"/api/v1/streams/{created['id']}", headers=operator)).json()
        assert got["url"] == "rtsp://127.0.0.1:9/live?token=***&channel=1"
        page = (await api.client.get("/api/v1/streams", headers=operator)).json()
        assert page["items"][0]["url"] == "rtsp://127.0.0.1:9/live?token=***&channel=1"

    r = await api.client.patch(
        f"/api/v1/streams/{created['id']}",
        json={"url": "rtsp://admin:hunter2@127.0.0.1:9/live?PassWord=s3cretTok&channel=2"},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == "rtsp://***:***@127.0.0.1:9/live?PassWord=***&channel=2"

    audit = (await api.client.get("/api/v1/audit", headers=admin)).json()["items"]
    changes = [e["changes"] for e in audit if e["entity_id"] == created["id"]]
    assert len(changes) == 2
    assert "channel=1" in json.dumps(changes) and "channel=2" in json.dumps(changes)
    stored = await db.fetch(
        "SELECT changes::text AS c FROM audit_log WHERE entity_id = $1", uuid.UUID(created["id"])
    )
    for text in [json.dumps(changes), *(row["c"] for row in stored)]:
        assert not any(secret in text for secret in SECRETS), text


async def test_viewers_learn_only_the_category_of_a_failure(
    api: Api, db: asyncpg.Pool, tmp_path: Path, closed_port: int
) -> None:
    tenant, operator = await api.tenant_user("operator")
    _, viewer = await api.tenant_user("viewer", tenant)
    url = f"rtsp://admin:hunter2@127.0.0.1:{closed_port}/secret-path?token=s3cretTok&channel=1"
    stream = await api.stream(operator, url=url)
    r = await api.client.post(f"/api/v1/streams/{stream['id']}/snapshots", headers=operator)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]

    # The worker, in-process, against the real ffmpeg: the connection is refused.
    settings = WorkerSettings(
        storage_dir=str(tmp_path / "store"),
        capture_attempts=1,
        capture_backoff_seconds=0,
        ffmpeg_timeout_seconds=10,
        allowed_networks="127.0.0.1/32",
    )
    worker = build_deps(settings, db)
    stream_id, tenant_id = uuid.UUID(stream["id"]), uuid.UUID(tenant)
    with pytest.raises(Exception, match="Connection refused"):
        await capture_snapshot(
            CaptureSnapshot(job_id=uuid.UUID(job_id), stream_id=stream_id), tenant_id, worker
        )
    await probe_stream(ProbeStream(stream_ids=[stream_id]), tenant_id, worker)

    job_path, stream_path = f"/api/v1/jobs/{job_id}", f"/api/v1/streams/{stream['id']}"
    seen = await api.client.get(job_path, headers=viewer)
    assert seen.json()["status"] == "failed"
    assert seen.json()["error_category"] == "refused" and "error" not in seen.json()
    texts = [seen.text]
    for _ in range(2):  # the second read comes from the read cache
        got = await api.client.get(stream_path, headers=viewer)
        assert got.json()["status"] == "error" and got.json()["last_error_category"] == "refused"
        assert "last_error" not in got.json() and "url" not in got.json()
        listed = await api.client.get(
            "/api/v1/streams", params={"fields": "name,last_error"}, headers=viewer
        )
        assert listed.json()["items"] == [{"id": stream["id"], "name": "cam"}]
        listed = await api.client.get("/api/v1/streams", headers=viewer)
        assert listed.json()["items"][0]["last_error_category"] == "refused"
        texts += [got.text, listed.text]
    board = await api.client.get("/api/v1/dashboard/summary", headers=viewer)
    assert [j["error_category"] for j in board.json()["failed_jobs"]] == ["refused"]
    assert [s["last_error_category"] for s in board.json()["error_streams"]] == ["refused"]
    assert "error" not in board.json()["failed_jobs"][0]
    assert "last_error" not in board.json()["error_streams"][0]
    texts.append(board.text)
    for text in texts:
        for leak in ("127.0.0.1", "secret-path", "Connection", "tcp", *SECRETS):
            assert leak not in text, (leak, text)

    # Operators read the detail: what ffmpeg said, without credentials or heap addresses.
    detail = (await api.client.get(job_path, headers=operator)).json()
    assert detail["error_category"] == "refused"
    assert "Connection refused" in detail["error"] and "127.0.0.1" in detail["error"]
    got = (await api.client.get(stream_path, headers=operator)).json()
    board = (await api.client.get("/api/v1/dashboard/summary", headers=operator)).json()
    for error in (detail["error"], got["last_error"], board["failed_jobs"][0]["error"]):
        assert "Connection refused" in error
        assert "0x" not in error and not any(secret in error for secret in SECRETS), error
