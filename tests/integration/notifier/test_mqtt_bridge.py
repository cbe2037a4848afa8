"""The Home Assistant MQTT bridge against a real Mosquitto started by the test on a free
loopback port, with the notifier as an OS process: discovery, state and availability
topics per tenant, and ``offline`` from the last will when the notifier is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiomqtt
import asyncpg
import httpx
import pytest
from lookout_api.domain.signed_urls import BadSignature, verify
from lookout_api.settings import ApiSettings
from lookout_shared.broker import Broker
from lookout_shared.contracts import SnapshotCreated
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.storage import LocalStorage

from tests.integration.notifier.test_ws import stream_event

TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """A broker of this test's own (never the system service), anonymous on loopback."""
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert proc.poll() is None, "mosquitto exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        subprocess.run(["sleep", "0.05"], check=True)
    pytest.fail("mosquitto did not listen")


class Seen:
    def __init__(self) -> None:
        self.topics: dict[str, bytes] = {}

    async def until(self, topic: str, payload: bytes | None = None) -> bytes:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while topic not in self.topics or (payload is not None and self.topics[topic] != payload):
            assert asyncio.get_running_loop().time() < deadline, f"no {topic} {payload!r}"
            await asyncio.sleep(0.05)
        return self.topics[topic]


@pytest.fixture
async def seen(mosquitto: int) -> AsyncIterator[Seen]:
    seen = Seen()
    async with aiomqtt.Client("127.0.0.1", mosquitto) as client:
        await client.subscribe("lookout/#", qos=1)
        await client.subscribe("homeassistant/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen.topics[str(message.topic)] = message.payload

        task = asyncio.create_task(collect())
        yield seen
        task.cancel()


async def test_streams_appear_with_discovery_state_and_availability_until_killed(
    mosquitto: int, seen: Seen, broker: Broker, prefix: str, tmp_path: Path, db: asyncpg.Pool
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOOKOUT_NOTIFIER_PORT": str(port),
        "LOOKOUT_REDIS_PREFIX": prefix,
        "LOOKOUT_MQTT_URL": f"mqtt://127.0.0.1:{mosquitto}",
        "LOOKOUT_STORAGE_DIR": str(tmp_path),
    }
    proc = _spawn(env, tmp_path / "notifier.log")
    try:
        await _until_ready(port, proc, tmp_path / "notifier.log")
        tenant, other, stream = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await broker.publish_envelope(stream_event("stream.created", stream, tenant))
        await broker.publish_envelope(stream_event("stream.created", uuid.uuid4(), other))
        base = f"lookout/{tenant}"
        assert await seen.until(f"{base}/availability") == b"online"
        assert await seen.until(f"{base}/streams/{stream}/status") == b"pending"
        sensor = json.loads(
            await seen.until(f"homeassistant/sensor/{tenant}/lookout_{stream}_status/config")
        )
        assert sensor["state_topic"] == f"{base}/streams/{stream}/status"
        assert sensor["availability_topic"] == f"{base}/availability"
        camera = json.loads(
            await seen.until(f"homeassistant/camera/{tenant}/lookout_{stream}_snapshot/config")
        )
        assert camera["topic"] == f"{base}/streams/{stream}/snapshot"
        assert camera["device"]["identifiers"] == sensor["device"]["identifiers"]
        image = json.loads(
            await seen.until(f"homeassistant/image/{tenant}/lookout_{stream}_snapshot_url/config")
        )
        assert image["url_topic"] == f"{base}/streams/{stream}/snapshot_url"
        # The camera entity shows the latest snapshot's JPEG bytes.
        jpeg = b"\xff\xd8 a tiny test image \xff\xd9"
        await broker.publish_envelope(await snapshot_created(db, tmp_path, tenant, stream, jpeg))
        assert await seen.until(f"{base}/streams/{stream}/snapshot") == jpeg
        # And the image entity a signed URL of it, which the api opens with its own key.
        url = urlsplit((await seen.until(f"{base}/streams/{stream}/snapshot_url")).decode())
        assert url.path == f"/api/v1/streams/{stream}/snapshots/latest/image"
        signed = dict(parse_qsl(url.query))
        key = ApiSettings().signing_key()
        verify(key, tenant, stream, "latest_snapshot", signed["exp"], signed["sig"], time.time())
        with pytest.raises(BadSignature):  # the URL opens that stream's route and nothing else
            verify(key, tenant, stream, "latest_jpg", signed["exp"], signed["sig"], time.time())
        # The other tenant's stream lives under its own subtree only.
        await seen.until(f"lookout/{other}/availability", b"online")
        assert not [t for t in seen.topics if t.startswith(base) and str(other) in t]
        proc.send_signal(signal.SIGKILL)  # no clean goodbye: the broker sends the will
        proc.wait(10)
        await seen.until(f"{base}/availability", b"offline")
        await seen.until(f"lookout/{other}/availability", b"offline")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def snapshot_created(
    db: asyncpg.Pool, storage_dir: Path, tenant: uuid.UUID, stream: uuid.UUID, data: bytes
) -> Envelope:
    """A stored snapshot with its rows, as the worker leaves it, and its event."""
    stored = await LocalStorage(storage_dir).put(data, "image/jpeg")
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, tenant.hex)
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, 'rtsp')",
        stream,
        tenant,
        "rtsp://cam.example.com/live",
    )
    job, snapshot = uuid.uuid4(), uuid.uuid4()
    await db.execute(
        """INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, attempts, version)
           VALUES ($1, $2, $3, 'succeeded', 1, 3)""",
        job,
        tenant,
        stream,
    )
    await db.execute(
        """INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key, content_type,
                                  size_bytes, sha256)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        snapshot,
        tenant,
        stream,
        job,
        stored.key,
        stored.content_type,
        stored.size_bytes,
        stored.sha256,
    )
    payload = SnapshotCreated(
        stream_id=stream, job_id=job, content_type="image/jpeg", size_bytes=len(data)
    )
    return make_envelope(
        "snapshot.created",
        payload,
        producer="tests",
        tenant_id=tenant,
        entity_id=snapshot,
        entity_version=1,
    )


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "lookout_notifier.main"], env=env, stderr=out
        )


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def _until_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"notifier exited: {_tail(log)}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("notifier not ready")
