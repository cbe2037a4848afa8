"""Captures and probes over RTSP from a real server on loopback (GStreamer's rtsp-server,
allow-listed explicitly): a frame, the stream's size/codec/rate, a 401 that fails at once,
and credentials in the URL that work and never reach a log line or a job's error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import ProbeStream
from lookout_shared.storage import LocalStorage
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.handlers.probe import probe_stream

from .test_ffmpeg_sources import deps_for, run_capture

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python, which has GStreamer's bindings (gi)
USER, PASSWORD = "viewer", "rtsp-pass-4f9c1e"


@dataclass
class Rtsp:
    open_url: str  # rtsp://127.0.0.1:<port>/cam, no credentials needed
    private_base: str  # 127.0.0.1:<port>, answers 401 without USER:PASSWORD
    lines: list[str] = field(default_factory=list)  # "client open|private" per connection

    def clients(self, name: str) -> int:
        return self.lines.count(f"client {name}")


def _wait_accepting(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def rtsp() -> Iterator[Rtsp]:
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), USER, PASSWORD],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, killed as a whole below
    )
    assert proc.stdout is not None
    try:
        ports: dict[str, int] = {}
        for _ in range(2):
            line = proc.stdout.readline()  # each line comes once that server listens
            assert line, f"the RTSP server exited with {proc.wait()}"
            name, number = line.split()
            ports[name] = int(number)
        for port in ports.values():
            _wait_accepting(port)
        server = Rtsp(f"rtsp://127.0.0.1:{ports['open']}/cam", f"127.0.0.1:{ports['private']}")
        # Keep reading, so connections can be counted (and the pipe never fills up).
        reader = threading.Thread(
            target=lambda: server.lines.extend(line.strip() for line in proc.stdout or ()),
            daemon=True,
        )
        reader.start()
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def test_captures_a_real_jpeg_over_rtsp(db: asyncpg.Pool, tmp_path: Path, rtsp: Rtsp) -> None:
    deps = deps_for(db, tmp_path, ffmpeg_timeout_seconds=15)
    job = await run_capture(db, deps, rtsp.open_url, "rtsp")
    row = await db.fetchrow(
        """SELECT j.status, j.error, s.width, s.height, s.size_bytes, s.storage_key
           FROM snapshot_jobs j JOIN snapshots s ON s.job_id = j.id WHERE j.id = $1""",
        job,
    )
    assert row is not None
    assert (row["status"], row["width"], row["height"]) == ("succeeded", 640, 360)
    data = LocalStorage(tmp_path / "store").path_of(row["storage_key"]).read_bytes()
    assert jpeg_dimensions(data) == (640, 360)
    assert len(data) == row["size_bytes"] > 2_000  # a real picture, not an empty frame


async def test_a_probe_fills_size_codec_and_rate(
    db: asyncpg.Pool, tmp_path: Path, rtsp: Rtsp
) -> None:
    tenant, stream = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"t-{tenant}")
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, 'rtsp')",
        stream, tenant, rtsp.open_url,
    )  # fmt: skip
    deps = deps_for(db, tmp_path, ffmpeg_timeout_seconds=15)
    await probe_stream(ProbeStream(stream_ids=[stream]), tenant, deps)
    row = await db.fetchrow(
        "SELECT width, height, codec, fps, status, last_error FROM streams WHERE id = $1", stream
    )
    assert row is not None
    assert dict(row) == {
        "width": 640, "height": 360, "codec": "h264", "fps": 15.0,
        "status": "online", "last_error": None,
    }  # fmt: skip


async def test_a_401_fails_at_once_and_leaks_no_credentials(
    db: asyncpg.Pool, tmp_path: Path, rtsp: Rtsp, caplog: pytest.LogCaptureFixture
) -> None:
    deps = deps_for(db, tmp_path, capture_attempts=3, ffmpeg_timeout_seconds=15)
    wrong = f"rtsp://{USER}:wrong-pass-77ab@{rtsp.private_base}/cam"
    before = rtsp.clients("private")
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentFailure, match="401") as failure:
        await run_capture(db, deps, wrong, "rtsp")
    error = await db.fetchval("SELECT error FROM snapshot_jobs")
    assert "401" in error
    for text in (error, str(failure.value), caplog.text):
        assert "wrong-pass-77ab" not in text
    await asyncio.sleep(0.2)  # let the reader thread see the connection line
    assert rtsp.clients("private") - before == 1  # permanent: not retried


async def test_credentials_in_the_url_capture_and_are_never_logged(
    db: asyncpg.Pool, tmp_path: Path, rtsp: Rtsp, caplog: pytest.LogCaptureFixture
) -> None:
    deps = deps_for(db, tmp_path, ffmpeg_timeout_seconds=15)
    url = f"rtsp://{USER}:{PASSWORD}@{rtsp.private_base}/cam"
    with caplog.at_level(logging.DEBUG):
        job = await run_capture(db, deps, url, "rtsp")
    row = await db.fetchrow(
        "SELECT j.status, s.width FROM snapshot_jobs j JOIN snapshots s ON s.job_id = j.id"
        " WHERE j.id = $1",
        job,
    )
    assert row is not None and (row["status"], row["width"]) == ("succeeded", 640)
    assert caplog.records  # the capture did log, just not the password
    assert PASSWORD not in caplog.text


@pytest.fixture
def silent_rtsp() -> Iterator[str]:
    """A TCP server on loopback that accepts RTSP clients and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam"
    finally:
        server.close()
        for conn in held:
            conn.close()


async def test_a_silent_rtsp_server_is_a_timeout_and_is_retried(
    db: asyncpg.Pool, tmp_path: Path, silent_rtsp: str
) -> None:
    # ffmpeg's rtsp demuxer calls this "Invalid data found", which alone would read as
    # permanent; waiting out the whole timeout makes it a transient failure instead.
    deps = deps_for(db, tmp_path, capture_attempts=2, ffmpeg_timeout_seconds=2)
    with pytest.raises(PermanentFailure, match=r"did not answer|timed out|[Tt]imeout"):
        await run_capture(db, deps, silent_rtsp, "rtsp")
    row = await db.fetchrow("SELECT status, attempts FROM snapshot_jobs")
    assert row is not None and (row["status"], row["attempts"]) == ("failed", 2)
