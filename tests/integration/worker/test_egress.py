"""Captures (capture children) and probes (ffprobe) reach nothing the egress policy refuses,
however they are led there.

127.0.0.1 is allow-listed, 127.0.0.2 is not. A witness listens on 127.0.0.2 and counts the
connections the kernel completed for it (its backlog is read without blocking, so even a
connection nobody accepted counts). The allowed server leads ffmpeg there through an HLS
segment, a variant of a master playlist, a redirected segment request and an RTSP DESCRIBE
answered with a redirect; each run must fail with the shim's refusal while the witness
receives nothing. Before the shim, ffmpeg connected to the witness in every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.capture_pool import CHILD_COMMAND
from lookout_snapshot_worker.adapters.egress import EgressUnavailable
from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.bootstrap import egress_shim
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.entrypoints.http import create_app
from lookout_snapshot_worker.ports import Deps
from lookout_snapshot_worker.settings import WorkerSettings

from .conftest import Sources
from .test_ffmpeg_sources import deps_for, job_row, run_capture

REFUSED = r"refused: address not allowed: (::ffff:)?127\.0\.0\.2 port \d+$"


class Witness:
    """A listener on the refused address that counts every connection made to it."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.2", 0))
        self._socket.listen(64)
        self._socket.setblocking(False)
        self.port = self._socket.getsockname()[1]
        self.address = f"127.0.0.2:{self.port}"
        self._count = 0

    def connections(self) -> int:
        while True:
            try:
                self._socket.accept()[0].close()
            except BlockingIOError:
                return self._count
            self._count += 1

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def witness() -> Iterator[Witness]:
    w = Witness()
    try:
        yield w
    finally:
        w.close()


def playlist(*lines: str) -> str:
    return "\n".join(["#EXTM3U", "#EXT-X-VERSION:3", *lines, ""])


def hls_media(web_root: Path, sources: Sources, segment: str) -> str:
    name = f"media-{uuid.uuid4().hex}.m3u8"
    body = playlist("#EXT-X-TARGETDURATION:1", "#EXTINF:1,", segment, "#EXT-X-ENDLIST")
    (web_root / name).write_text(body)
    return f"{sources.base}/{name}"


def hls_master(web_root: Path, sources: Sources, variant: str) -> str:
    name = f"master-{uuid.uuid4().hex}.m3u8"
    (web_root / name).write_text(playlist("#EXT-X-STREAM-INF:BANDWIDTH=100000", variant))
    return f"{sources.base}/{name}"


@contextlib.asynccontextmanager
async def rtsp_redirecting_to(location: str) -> AsyncIterator[str]:
    """An RTSP server on 127.0.0.1 that answers OPTIONS, and DESCRIBE with a 302."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                method = head.split(" ", 1)[0]
                cseq = next(
                    (line.split(":", 1)[1].strip() for line in head.split("\r\n")
                     if line.lower().startswith("cseq:")),
                    "0",
                )  # fmt: skip
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
                    writer.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
                else:
                    writer.write(
                        f"RTSP/1.0 302 Moved\r\nCSeq: {cseq}\r\nLocation: {location}\r\n\r\n".encode()
                    )
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        server.close()
        await server.wait_closed()


Run = Callable[[Deps, str], Awaitable[object]]


async def capture(deps: Deps, url: str) -> object:
    return await deps.frames.capture(parse_stream_url(url, None))


async def probe(deps: Deps, url: str) -> object:
    return await deps.prober.probe(parse_stream_url(url, None))


TOOLS = {"ffmpeg capture": capture, "ffprobe probe": probe}


async def assert_refused(run: Run, deps: Deps, url: str, witness: Witness) -> None:
    with pytest.raises(MediaError) as failure:
        await run(deps, url)
    assert re.match(REFUSED, failure.value.reason), failure.value.reason
    assert not failure.value.transient
    assert witness.connections() == 0


@pytest.mark.parametrize("host", ["127.0.0.2", "[::ffff:127.0.0.2]"])  # plain, IPv4-mapped
@pytest.mark.parametrize("tool", TOOLS)
async def test_an_hls_segment_on_a_refused_address_is_never_fetched(
    db: asyncpg.Pool,
    tmp_path: Path,
    sources: Sources,
    web_root: Path,
    witness: Witness,
    tool: str,
    host: str,
) -> None:
    url = hls_media(web_root, sources, f"http://{host}:{witness.port}/segment0.ts")
    await assert_refused(TOOLS[tool], deps_for(db, tmp_path), url, witness)


@pytest.mark.parametrize("tool", TOOLS)
async def test_a_master_playlist_variant_on_a_refused_address_is_never_fetched(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources, web_root: Path, witness: Witness, tool: str
) -> None:
    url = hls_master(web_root, sources, f"http://{witness.address}/index.m3u8")
    await assert_refused(TOOLS[tool], deps_for(db, tmp_path), url, witness)


@pytest.mark.parametrize("tool", TOOLS)
async def test_a_segment_redirected_to_a_refused_address_is_never_fetched(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources, web_root: Path, witness: Witness, tool: str
) -> None:
    # ffmpeg's HLS demuxer follows a segment's redirect despite -max_redirects 0.
    url = hls_media(web_root, sources, f"/redirect?to=http://{witness.address}/segment0.ts")
    await assert_refused(TOOLS[tool], deps_for(db, tmp_path), url, witness)
    assert any(p.startswith("/redirect?to=") and witness.address in p for p in sources.requests)


@pytest.mark.parametrize("tool", TOOLS)
async def test_an_rtsp_describe_redirect_to_a_refused_address_is_never_followed(
    db: asyncpg.Pool, tmp_path: Path, witness: Witness, tool: str
) -> None:
    async with rtsp_redirecting_to(f"rtsp://{witness.address}/cam") as url:
        await assert_refused(TOOLS[tool], deps_for(db, tmp_path), url, witness)


async def test_a_refused_segment_fails_the_job_once_with_the_reason(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources, web_root: Path, witness: Witness
) -> None:
    url = hls_media(web_root, sources, f"http://{witness.address}/segment0.ts")
    deps = deps_for(db, tmp_path, capture_attempts=3)
    with pytest.raises(PermanentFailure, match=REFUSED):
        await run_capture(db, deps, url, "hls")
    row = await job_row(
        db, await db.fetchval("SELECT id FROM snapshot_jobs ORDER BY created_at DESC LIMIT 1")
    )
    assert row["status"] == "failed" and re.match(REFUSED, row["error"])
    assert sum(url.endswith(p) for p in sources.requests) == 1  # permanent: not retried
    assert witness.connections() == 0


async def test_captures_and_probes_from_the_allowed_address_still_work(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    deps = deps_for(db, tmp_path)
    url = parse_stream_url(f"{sources.base}/hls/index.m3u8", None)
    frame = await deps.frames.capture(url)
    assert jpeg_dimensions(frame.data) == (320, 240)
    probed = await deps.prober.probe(url)
    assert (probed.width, probed.height) == (320, 240)


def test_without_the_shim_the_worker_is_not_built(db: asyncpg.Pool, tmp_path: Path) -> None:
    with pytest.raises(EgressUnavailable, match="missing"):
        deps_for(db, tmp_path, egress_shim_path=str(tmp_path / "absent.so"))


async def test_a_binary_that_drops_the_shim_stops_the_worker_at_start(tmp_path: Path) -> None:
    # Stands for a static or setuid ffprobe: one the preload never reaches.
    wrapper = tmp_path / "ffprobe-unguarded"
    wrapper.write_text('#!/bin/sh\nunset LD_PRELOAD\nexec ffprobe "$@"\n')
    wrapper.chmod(0o755)
    settings = WorkerSettings(storage_dir=str(tmp_path / "store"), ffprobe_path=str(wrapper))
    await egress_shim(settings).verify("ffprobe")  # the real binary passes
    with pytest.raises(EgressUnavailable, match="not held by the egress shim"):
        await egress_shim(settings).verify(str(wrapper))
    app = create_app(settings)
    with pytest.raises(EgressUnavailable):
        async with app.router.lifespan_context(app):
            pass


async def test_a_capture_child_ended_by_the_shim_is_replaced_by_a_fresh_one(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources, web_root: Path, witness: Witness
) -> None:
    deps = deps_for(db, tmp_path)
    media = deps.frames
    assert isinstance(media, FfmpegMedia)
    url = hls_media(web_root, sources, f"http://{witness.address}/segment0.ts")
    await assert_refused(capture, deps, url, witness)
    assert media.children.pids() == []  # the shim ended it
    frame = await deps.frames.capture(parse_stream_url(f"{sources.base}/cam.ts", None))
    assert jpeg_dimensions(frame.data) == (320, 240)
    assert len(media.children.pids()) == 1


async def test_a_capture_child_that_drops_the_shim_stops_the_worker_at_start(
    tmp_path: Path,
) -> None:
    # Stands for an interpreter the preload never reaches (static, setuid, or a wrapper).
    wrapper = tmp_path / "python-unguarded"
    wrapper.write_text(f'#!/bin/sh\nunset LD_PRELOAD\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    shim = egress_shim(WorkerSettings(storage_dir=str(tmp_path / "store")))
    await shim.verify(capture_child=CHILD_COMMAND)  # the real one passes
    with pytest.raises(EgressUnavailable, match="not held by the egress shim"):
        await shim.verify(capture_child=(str(wrapper), *CHILD_COMMAND[1:]))
