"""The FrameSource and Prober ports: captures by warm capture children, probes by ffprobe.

A cold capture goes to one of a pool of long-lived capture children (capture_pool.py,
capture_child.py), which do what one ffmpeg process per capture did (commands.py
``capture_command``) with the same FFmpeg libraries, in-process through PyAV: the same input
restrictions, pixel cap, scaling and JPEG, under the same egress shim and memory cap,
without ffmpeg's ~90 ms of CPU to start per capture. A probe runs ffprobe.

Every capture and probe is a span ("ffmpeg capture" / "ffprobe": FFmpeg's libraries do the
work either way) and counts in ``lookout_ffmpeg_runs_total`` and
``lookout_ffmpeg_duration_seconds`` by outcome. Neither ever records the URL: it may carry
credentials; the scheme, kind and host say enough. A capture's span has
``process.exit.code`` only when its child died (a probe's, always): a warm child does not
exit after a capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from lookout_shared import telemetry
from lookout_shared.stream_urls import StreamUrl
from opentelemetry.trace import SpanKind

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.adapters.capture_pool import CapturePool
from lookout_snapshot_worker.adapters.commands import probe_command
from lookout_snapshot_worker.adapters.process import ProcessTimeout, run_bounded
from lookout_snapshot_worker.domain.attempts import current_attempt
from lookout_snapshot_worker.domain.capture import PIXEL_CAP_HIT
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
# An allocation refused by the child's memory limit: ENOMEM, or a frame buffer not obtained.
MEMORY_CAP_HIT = re.compile(r"cannot allocate memory|get_buffer\(\) failed", re.IGNORECASE)
MIB = 1024 * 1024

_tracer = telemetry.tracer(__name__)


class FfmpegMedia:
    """Captures and probes, each kind with its own bound on runs at once (bulkheads): a
    flood of probes waits for probe slots and never delays a capture. There are never more
    capture children than capture slots."""

    def __init__(
        self,
        *,
        ffprobe: str,
        timeout: float,
        max_width: int,
        max_pixels: int,
        max_memory_bytes: int | None,
        capture_slots: int,
        probe_slots: int,
        environment: Mapping[str, str],
    ) -> None:
        self._ffprobe = ffprobe
        self._timeout = timeout
        self._max_width = max_width
        self._max_pixels = max_pixels
        self._max_memory = max_memory_bytes
        self._slots = capture_slots
        self._capture_slots = asyncio.Semaphore(capture_slots)
        self._probe_slots = asyncio.Semaphore(probe_slots)
        # Preloads the egress shim: every connection a child opens is judged (egress.py).
        self._environment = environment
        self.children = CapturePool(environment, max_memory_bytes)

    async def capture(self, url: StreamUrl) -> Frame:
        request = {
            "url": url.url, "kind": url.kind, "io_timeout": self._timeout,
            "max_width": self._max_width, "max_pixels": self._max_pixels,
        }  # fmt: skip
        async with self._capture_slots:
            with _observed("ffmpeg", "ffmpeg capture", url) as run:
                started = time.monotonic()
                try:
                    answer = await self.children.capture(request, self._timeout)
                except ProcessTimeout as exc:
                    run.outcome = "timeout"
                    raise transient(str(exc)) from None
                except OSError as exc:  # the interpreter cannot be started
                    run.outcome = "unavailable"
                    raise transient(f"cannot run a capture child: {exc.strerror}") from None
                run.exit_code = answer.exit_code
                if not answer.ok:
                    raise self._failure("ffmpeg", answer.text, url, started, run)
                if not is_jpeg(answer.payload):
                    raise permanent("ffmpeg produced no frame (no decodable video?)")
        return Frame(answer.payload)

    async def probe(self, url: StreamUrl) -> ProbeResult:
        argv = probe_command(
            self._ffprobe, url, io_timeout=self._timeout, max_pixels=self._max_pixels
        )
        async with self._probe_slots:
            with _observed("ffprobe", "ffprobe", url) as run:
                started = time.monotonic()
                try:
                    done = await run_bounded(
                        argv, self._timeout, env=self._environment,
                        max_memory_bytes=self._max_memory,
                    )  # fmt: skip
                except ProcessTimeout as exc:
                    run.outcome = "timeout"
                    raise transient(str(exc)) from None
                except OSError as exc:  # the binary is missing or not executable
                    run.outcome = "unavailable"
                    raise transient(f"cannot run {argv[0]}: {exc.strerror}") from None
                run.exit_code = done.returncode
                stderr = done.stderr.decode(errors="replace")
                if done.returncode != 0 or PIXEL_CAP_HIT in stderr:
                    # ffprobe still exits 0 over the pixel cap, with a size of 0x0.
                    raise self._failure("ffprobe", stderr, url, started, run)
                result = _probe_result(done.stdout)
                if result.width * result.height > self._max_pixels:
                    raise self._too_large()
                return result

    def _failure(
        self, tool: str, stderr: str, url: StreamUrl, started: float, run: _Run
    ) -> MediaError:
        """The failure a run's stderr (a capture child's failure text) describes."""
        if PIXEL_CAP_HIT in stderr:
            return self._too_large()
        if self._max_memory is not None and MEMORY_CAP_HIT.search(stderr):
            return permanent(
                f"{tool} ran out of its {self._max_memory // MIB} MiB memory limit"
                " (LOOKOUT_FFMPEG_MAX_MEMORY_MB)"
            )
        if url.kind == "rtsp" and time.monotonic() - started >= self._timeout * RTSP_SILENCE:
            # FFmpeg's rtsp demuxer reports a server that never answered within its timeout
            # as "Invalid data found", which would read as permanent: it is a timeout.
            run.outcome = "timeout"
            return transient(f"the RTSP server did not answer within {self._timeout:g} s")
        return classify_stderr(stderr, source=url.url)

    def _too_large(self) -> MediaError:
        return permanent(
            f"the source's frames are larger than {self._max_pixels} pixels"
            " (LOOKOUT_FFMPEG_MAX_PIXELS)"
        )

    async def start(self) -> None:
        """Start the capture children, one per capture slot (the worker's start)."""
        await self.children.warm(self._slots)

    async def close(self) -> None:
        """Stop the capture children (the worker's shutdown)."""
        await self.children.close()


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
