"""The warm capture children with real FFmpeg: a capture makes the frame the ffmpeg command
made (size, JPEG), and the URL never reaches the process list nor the failure's reason."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.capture_pool import CapturePool
from lookout_snapshot_worker.adapters.commands import capture_command
from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.jpeg import is_jpeg, jpeg_dimensions

from .conftest import Sources
from .test_ffmpeg_sources import deps_for

SIZES = [(641, 481), (640, 363), (320, 241), (200, 150)]


@pytest.fixture(scope="module")
def odd_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    media = tmp_path_factory.mktemp("odd")
    for width, height in SIZES:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
             f"testsrc=size={width}x{height}", "-frames:v", "1", str(media / f"{width}x{height}.png")],
            check=True,
        )  # fmt: skip
    return media


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_a_capture_is_scaled_as_the_ffmpeg_command_scaled_it(
    db: asyncpg.Pool, tmp_path: Path, odd_frames: Path, width: int, height: int
) -> None:
    deps = deps_for(db, tmp_path, media_dir=str(odd_frames), snapshot_max_width=320)
    url = parse_stream_url(f"file://{odd_frames}/{width}x{height}.png", str(odd_frames))
    frame = await deps.frames.capture(url)
    argv = capture_command("ffmpeg", url, max_width=320, io_timeout=5, max_pixels=10**8)
    by_ffmpeg = subprocess.run(argv, capture_output=True, check=True).stdout
    assert is_jpeg(frame.data)
    assert jpeg_dimensions(frame.data) == jpeg_dimensions(by_ffmpeg)


def command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        try:
            lines.append((entry / "cmdline").read_bytes())
        except OSError:
            continue
    return lines


async def test_the_url_and_its_credentials_never_show_in_the_process_list_nor_the_reason(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    deps = deps_for(db, tmp_path, ffmpeg_timeout_seconds=1)
    media = deps.frames
    assert isinstance(media, FfmpegMedia)
    secret = b"s3cret-pw-7781"
    url = parse_stream_url(f"http://cam:{secret.decode()}@{sources.tarpit}/live.ts", None)
    task = asyncio.create_task(media.capture(url))
    looked = 0
    while not task.done():
        if media.children.pids():  # the child runs the capture now
            assert not any(secret in line for line in command_lines())
            looked += 1
        await asyncio.sleep(0.02)
    with pytest.raises(MediaError) as failure:
        await task
    assert looked > 0
    assert failure.value.transient  # the tarpit never answers: a timeout
    assert secret.decode() not in failure.value.reason


async def test_a_child_is_replaced_after_its_share_of_captures(odd_frames: Path) -> None:
    pool = CapturePool(os.environ, None, captures_per_child=2)
    request = {
        "url": f"file://{odd_frames}/320x241.png", "kind": "file", "io_timeout": 5,
        "max_width": 320, "max_pixels": 10**8,
    }  # fmt: skip
    try:
        await pool.warm(1)
        [first] = pool.pids()
        assert (await pool.capture(request, 10)).ok
        assert pool.pids() == [first]  # kept for the next capture
        assert (await pool.capture(request, 10)).ok
        assert pool.pids() == []  # its second capture was its last: killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)
        answer = await pool.capture(request, 10)
        assert answer.ok and is_jpeg(answer.payload)
        [second] = pool.pids()
        assert second != first
    finally:
        await pool.close()
