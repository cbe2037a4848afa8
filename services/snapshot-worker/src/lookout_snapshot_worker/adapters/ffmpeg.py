"""The FrameSource and Prober ports, backed by ffmpeg and ffprobe processes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lookout_shared.stream_urls import StreamUrl

from lookout_snapshot_worker.adapters.commands import capture_command, probe_command
from lookout_snapshot_worker.adapters.process import Completed, ProcessTimeout, run_bounded
from lookout_snapshot_worker.domain.failures import classify_stderr, permanent, transient
from lookout_snapshot_worker.domain.jpeg import is_jpeg
from lookout_snapshot_worker.domain.streams import ProbeResult, parse_rate
from lookout_snapshot_worker.ports import Frame


class FfmpegMedia:
    """Captures and probes, each kind with its own bound on processes at once (bulkheads):
    a flood of probes waits for probe slots and never delays a capture."""

    def __init__(
        self,
        *,
        ffmpeg: str,
        ffprobe: str,
        timeout: float,
        max_width: int,
        capture_slots: asyncio.Semaphore,
        probe_slots: asyncio.Semaphore,
    ) -> None:
        self._ffmpeg = ffmpeg
        self._ffprobe = ffprobe
        self._timeout = timeout
        self._max_width = max_width
        self._capture_slots = capture_slots
        self._probe_slots = probe_slots

    async def capture(self, url: StreamUrl) -> Frame:
        argv = capture_command(
            self._ffmpeg, url, max_width=self._max_width, io_timeout=self._timeout
        )
        done = await self._run(argv, url, self._capture_slots)
        if not is_jpeg(done.stdout):
            raise permanent("ffmpeg produced no frame (no decodable video?)")
        return Frame(done.stdout)

    async def probe(self, url: StreamUrl) -> ProbeResult:
        argv = probe_command(self._ffprobe, url, io_timeout=self._timeout)
        done = await self._run(argv, url, self._probe_slots)
        try:
            streams: list[dict[str, Any]] = json.loads(done.stdout).get("streams") or []
            first = streams[0]
            # The average rate is what a viewer sees; live sources often leave it 0/0.
            fps = parse_rate(first.get("avg_frame_rate")) or parse_rate(first.get("r_frame_rate"))
            return ProbeResult(
                int(first["width"]), int(first["height"]), str(first["codec_name"]), fps
            )
        except (ValueError, IndexError, KeyError, TypeError, AttributeError):
            raise permanent("no video stream found") from None

    async def _run(self, argv: list[str], url: StreamUrl, slots: asyncio.Semaphore) -> Completed:
        async with slots:
            try:
                done = await run_bounded(argv, self._timeout)
            except ProcessTimeout as exc:
                raise transient(str(exc)) from None
            except OSError as exc:  # the binary is missing or not executable
                raise transient(f"cannot run {argv[0]}: {exc.strerror}") from None
        if done.returncode != 0:
            raise classify_stderr(done.stderr.decode(errors="replace"), source=url.url)
        return done
