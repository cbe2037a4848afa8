"""Cold captures: ffmpeg run on a source as the worker runs it for a snapshot of a stream that
is not hot (its own argv builder and bounded runner), the baseline of the api's snapshot and
latest-frame rows."""

from __future__ import annotations

import time
from pathlib import Path

from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.commands import capture_command
from lookout_snapshot_worker.adapters.process import run_bounded

CAPTURES = 10


async def cold_captures(video: Path, media: Path, n: int = CAPTURES) -> tuple[bytes, list[float]]:
    """The last JPEG ffmpeg captured of ``video`` and how long each of ``n`` runs took."""
    argv = capture_command(
        "ffmpeg",
        parse_stream_url(video.as_uri(), str(media)),
        max_width=1920,
        io_timeout=20,
        max_pixels=7680 * 4320,
    )
    took, jpeg = [], b""
    for _ in range(n):
        started = time.perf_counter()
        done = await run_bounded(argv, 60)
        took.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr[-500:]
        jpeg = done.stdout
    return jpeg, took
