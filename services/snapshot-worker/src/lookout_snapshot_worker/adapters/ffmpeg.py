"""The FrameSource and Prober ports, backed by ffmpeg and ffprobe processes.

Every run is a span ("ffmpeg capture" / "ffprobe") and counts in ``lookout_ffmpeg_runs_total``
and ``lookout_ffmpeg_duration_seconds`` by outcome. Neither ever records the URL: it may
carry credentials; the scheme, kind and host say enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from lookout_shared import telemetry
from lookout_shared.stream_urls import StreamUrl
from opentelemetry.trace import SpanKind

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.adapters.commands import capture_command, probe_command
from lookout_snapshot_worker.adapters.process import Completed, ProcessTimeout, run_bounded
from lookout_snapshot_worker.domain.attempts import current_attempt
from lookout_snapshot_worker.domain.failures import (
    MediaError,
    classify_stderr,
    permanent,
    transient,
)
from lookout_snapshot_worker.domain.jpeg import is_jpeg
from lookout_snapshot_worker.domain.streams import ProbeResult, parse_rate
from lookout_snapshot_worker.ports import Frame

# An rtsp run that failed after this share of the timeout waited it out: the server was silent.
RTSP_SILENCE = 0.9
# What the decoders print when a frame is over -max_pixels (libavutil's av_image_check_size2).
PIXEL_CAP_HIT = "exceeds specified max pixel count"
# An allocation refused by the child's memory limit: ENOMEM, or a frame buffer not obtained.
MEMORY_CAP_HIT = re.compile(r"cannot allocate memory|get_buffer\(\) failed", re.IGNORECASE)
MIB = 1024 * 1024

_tracer = telemetry.tracer(__name__)


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
        max_pixels: int,
        max_memory_bytes: int | None,
        capture_slots: asyncio.Semaphore,
        probe_slots: asyncio.Semaphore,
        environment: Mapping[str, str],
    ) -> None:
        self._ffmpeg = ffmpeg
        self._ffprobe = ffprobe
        self._timeout = timeout
        self._max_width = max_width
        self._max_pixels = max_pixels
        self._max_memory = max_memory_bytes
        self._capture_slots = capture_slots
        self._probe_slots = probe_slots
        # Preloads the egress shim: every connection the child opens is judged (egress.py).
        self._environment = environment

    async def capture(self, url: StreamUrl) -> Frame:
        argv = capture_command(
            self._ffmpeg,
            url,
            max_width=self._max_width,
            io_timeout=self._timeout,
            max_pixels=self._max_pixels,
        )
        async with self._capture_slots:
            with _observed("ffmpeg", "ffmpeg capture", url) as run:
                done = await self._run(argv, url, run)
                if not is_jpeg(done.stdout):
                    raise permanent("ffmpeg produced no frame (no decodable video?)")
        return Frame(done.stdout)

    async def probe(self, url: StreamUrl) -> ProbeResult:
        argv = probe_command(
            self._ffprobe, url, io_timeout=self._timeout, max_pixels=self._max_pixels
        )
        async with self._probe_slots:
            with _observed("ffprobe", "ffprobe", url) as run:
                done = await self._run(argv, url, run)
                result = _probe_result(done.stdout)
                if result.width * result.height > self._max_pixels:
                    raise self._too_large()
                return result

    async def _run(self, argv: list[str], url: StreamUrl, run: _Run) -> Completed:
        started = time.monotonic()
        try:
            done = await run_bounded(
                argv, self._timeout, env=self._environment, max_memory_bytes=self._max_memory
            )
        except ProcessTimeout as exc:
            run.outcome = "timeout"
            raise transient(str(exc)) from None
        except OSError as exc:  # the binary is missing or not executable
            run.outcome = "unavailable"
            raise transient(f"cannot run {argv[0]}: {exc.strerror}") from None
        run.exit_code = done.returncode
        stderr = done.stderr.decode(errors="replace")
        if PIXEL_CAP_HIT in stderr:  # ffprobe still exits 0, with a size of 0x0
            raise self._too_large()
        if done.returncode == 0:
            return done
        if self._max_memory is not None and MEMORY_CAP_HIT.search(stderr):
            raise permanent(
                f"{os.path.basename(argv[0])} ran out of its {self._max_memory // MIB} MiB memory limit"
                " (LOOKOUT_FFMPEG_MAX_MEMORY_MB)"
            )
        if url.kind == "rtsp" and time.monotonic() - started >= self._timeout * RTSP_SILENCE:
            # ffmpeg's rtsp demuxer reports a server that never answered within -timeout as
            # "Invalid data found", which would read as permanent: it is a timeout.
            run.outcome = "timeout"
            raise transient(f"the RTSP server did not answer within {self._timeout:g} s")
        raise classify_stderr(stderr, source=url.url)

    def _too_large(self) -> MediaError:
        return permanent(
            f"the source's frames are larger than {self._max_pixels} pixels"
            " (LOOKOUT_FFMPEG_MAX_PIXELS)"
        )


def _probe_result(stdout: bytes) -> ProbeResult:
    try:
        streams: list[dict[str, Any]] = json.loads(stdout).get("streams") or []
        first = streams[0]
        # The average rate is what a viewer sees; live sources often leave it 0/0.
        fps = parse_rate(first.get("avg_frame_rate")) or parse_rate(first.get("r_frame_rate"))
        return ProbeResult(int(first["width"]), int(first["height"]), str(first["codec_name"]), fps)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        raise permanent("no video stream found") from None


class _Run:
    """What one run ended with; ``outcome`` is set where the failure is told apart."""

    def __init__(self) -> None:
        self.outcome: str | None = None
        self.exit_code: int | None = None


@contextlib.contextmanager
def _observed(tool: str, span_name: str, url: StreamUrl) -> Iterator[_Run]:
    attributes: dict[str, str | int] = {
        "process.executable.name": tool,
        "url.scheme": url.scheme,
        "lookout.stream.kind": url.kind,
    }
    if url.host:
        attributes["server.address"] = url.host
    attempt = current_attempt()
    if attempt is not None:
        attributes["lookout.stream.id"] = str(attempt.stream_id)
        attributes["lookout.attempt"] = attempt.number
    run = _Run()
    started = time.perf_counter()
    with _tracer.start_as_current_span(
        span_name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
    ) as span:
        try:
            yield run
            run.outcome = "succeeded"
        except MediaError as exc:
            run.outcome = run.outcome or ("transient" if exc.transient else "permanent")
            raise  # the span's status says why (the reason holds no URL nor credentials)
        except asyncio.CancelledError:
            run.outcome = "cancelled"
            raise
        finally:
            outcome = run.outcome or "error"
            span.set_attribute("lookout.outcome", outcome)
            if outcome != "succeeded":
                span.set_attribute("error.type", outcome)
            if run.exit_code is not None:
                span.set_attribute("process.exit.code", run.exit_code)
            metrics.FFMPEG_RUNS.labels(tool, outcome).inc()
            metrics.FFMPEG_DURATION.labels(tool, outcome).observe(time.perf_counter() - started)
