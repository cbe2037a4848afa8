"""Holding one hot stream: its reader child, the frames it publishes, reconnecting.

The reader runs as a child process (hot_reader.py), not in the worker, for three reasons:
the egress shim that holds ffmpeg to the address policy is an LD_PRELOAD library, which
covers only a process started with it, so the child starts with it like ffmpeg does; the
memory cap and the death-with-the-worker of adapters/child.py apply to it (set by that same shim); and a decoder
that crashes on a bad stream takes down one stream, not the worker. The worker's event loop
only reads finished JPEGs from a pipe.

A source that stops (the reader exits, or sends nothing for ``stall_seconds``) is reopened
at once if it had delivered frames, else after a jittered exponential backoff (tenacity).
After ``error_after`` failed reconnects in a row the stream is reported ``error`` with the
failure's category; the first frame after that reports it ``online`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from lookout_shared.hot_frames import HotFrame
from lookout_shared.stream_urls import InvalidStreamUrl, parse_stream_url
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.adapters.child import child_environment
from lookout_snapshot_worker.adapters.hot_lease import HotLeases
from lookout_snapshot_worker.domain.failures import MediaError, classify_stderr, permanent
from lookout_snapshot_worker.domain.hot import FRAME_HEADER, HotStream
from lookout_snapshot_worker.ports import UrlGuard

log = logging.getLogger(__name__)
# What a report says: None when frames flow again, else the failure.
Report = Callable[[HotStream, MediaError | None], Awaitable[None]]


class LeaseLost(Exception):
    """Another worker holds the stream now: this one stops publishing it."""


@dataclass(frozen=True)
class ReaderConfig:
    environment: Mapping[str, str]  # the egress shim and its policy (adapters/egress.py)
    media_dir: str | None
    io_timeout: float
    stall_seconds: float
    max_pixels: int
    max_memory_bytes: int | None
    frame_ttl: float
    backoff_seconds: float
    backoff_max_seconds: float
    error_after: int
    publish_interval: float = 0.0  # at most one frame per this many seconds (hot_reader.py)


class StreamHolder:
    def __init__(
        self,
        stream: HotStream,
        config: ReaderConfig,
        leases: HotLeases,
        guard: UrlGuard,
        report: Report,
    ) -> None:
        self.stream = stream
        self._config = config
        self._leases = leases
        self._guard = guard
        self._report = report
        self._reported_error = False

    async def run(self) -> None:
        """Publish frames until cancelled or the lease is lost (raises LeaseLost)."""
        while True:
            retrying = AsyncRetrying(
                wait=wait_random_exponential(
                    multiplier=self._config.backoff_seconds, max=self._config.backoff_max_seconds
                ),
                retry=retry_if_exception_type(MediaError),
                before_sleep=self._failed,
            )
            # A session that delivered frames returns: the next one starts without waiting.
            await retrying(self._session)

    async def _failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, MediaError):
            return
        log.info(
            "hot stream %s: %s (attempt %d)", self.stream.id, error.reason, state.attempt_number
        )
        if state.attempt_number >= self._config.error_after and not self._reported_error:
            self._reported_error = True
            await self._report(self.stream, error)

    async def _session(self) -> None:
        try:
            url = parse_stream_url(self.stream.url, self._config.media_dir)
        except InvalidStreamUrl as exc:
            raise permanent(f"invalid stream url: {exc}") from None
        await self._guard.check(url)  # the plain cases fail here, with a clear reason
        settings = {
            "url": url.url, "kind": url.kind, "mode": self.stream.mode,
            "io_timeout": self._config.io_timeout, "stall_seconds": self._config.stall_seconds,
            "max_pixels": self._config.max_pixels,
            "publish_interval": self._config.publish_interval,
        }  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lookout_snapshot_worker.adapters.hot_reader",
            env=child_environment(self._config.environment, self._config.max_memory_bytes),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        delivered = 0
        try:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(json.dumps(settings).encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
            stderr = asyncio.ensure_future(proc.stderr.read())
            while (frame := await self._next_frame(proc.stdout)) is not None:
                if not await self._leases.publish(self.stream.id, frame, self._config.frame_ttl):
                    raise LeaseLost(str(self.stream.id))
                metrics.HOT_FRAMES.inc()
                delivered += 1
                if delivered == 1 and self._reported_error:
                    self._reported_error = False
                    await self._report(self.stream, None)
        finally:
            await _kill(proc)
        reason = (await stderr).decode(errors="replace").strip() or "the source stopped sending"
        if delivered:
            log.info(
                "hot stream %s lost its source after %d frames; reopening",
                self.stream.id,
                delivered,
            )
            return
        raise classify_stderr(reason, source=url.url)

    async def _next_frame(self, out: asyncio.StreamReader) -> HotFrame | None:
        """The reader's next frame; None when it ended or stayed silent past the stall limit."""
        try:
            header = await asyncio.wait_for(
                out.readexactly(FRAME_HEADER.size), self._config.stall_seconds
            )
            captured_at, width, height, size = FRAME_HEADER.unpack(header)
            jpeg = await asyncio.wait_for(out.readexactly(size), self._config.stall_seconds)
        except (asyncio.IncompleteReadError, TimeoutError):
            return None
        return HotFrame(jpeg, captured_at, width, height, self._leases.holder)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await asyncio.shield(proc.wait())


def frame_age(frame: HotFrame) -> float:
    return time.time() - frame.captured_at
