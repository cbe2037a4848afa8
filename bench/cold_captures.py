"""Cold captures: a snapshot of a stream that is not hot, taken as the worker takes it (its
own capture adapter with the worker's default settings: a warm capture child under the egress
library, one frame scaled to at most 1920 wide), the baseline of the api's snapshot and
latest-frame rows. Timed per capture, after the child has started (the worker starts its
children before it takes commands)."""

from __future__ import annotations

import time
from pathlib import Path

from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.bootstrap import capture_media, egress_shim
from lookout_snapshot_worker.settings import WorkerSettings

CAPTURES = 10


async def cold_captures(video: Path, media: Path, n: int = CAPTURES) -> tuple[bytes, list[float]]:
    """The last JPEG captured of ``video`` and how long each of ``n`` captures took."""
    settings = WorkerSettings(media_dir=str(media))
    capturer = capture_media(settings, egress_shim(settings), capture_slots=1)
    url = parse_stream_url(video.as_uri(), str(media))
    took, jpeg = [], b""
    await capturer.start()
    try:
        for _ in range(n):
            started = time.perf_counter()
            jpeg = (await capturer.capture(url)).data
            took.append(time.perf_counter() - started)
    finally:
        await capturer.close()
    return jpeg, took
