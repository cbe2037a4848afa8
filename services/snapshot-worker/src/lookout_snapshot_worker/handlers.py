"""One function per command: snapshot.capture and stream.probe.

Both are idempotent, because RabbitMQ delivers at least once: a finished job ignores its
command, a redelivered capture of a job left "running" by a dead worker simply runs again,
and every write is guarded by the version it was based on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot, ErrorCategory, ProbeStream
from lookout_shared.stream_urls import InvalidStreamUrl, StreamUrl, parse_stream_url
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lookout_snapshot_worker.attempts import media_attempt
from lookout_snapshot_worker.domain.breaker import BreakerPolicy, BreakerState
from lookout_snapshot_worker.domain.events import job_event, snapshot_created, stream_updated
from lookout_snapshot_worker.domain.failures import MediaError, permanent
from lookout_snapshot_worker.domain.jobs import Snapshot
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream
from lookout_snapshot_worker.hot_snapshot import fresh_hot_frame
from lookout_snapshot_worker.ports import (
    BreakerStore,
    FileStore,
    FrameSource,
    HotFrames,
    JobStore,
    Prober,
    Reaper,
    StreamStore,
    UrlGuard,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
CIRCUIT_OPEN: ErrorCategory = "circuit_open"
# Guarded writes of a probe's result, each on the stream as reloaded after a conflict.
SAVE_TRIES = 3


class StaleState(Exception):
    """The row changed under us; the command is requeued and handled again from scratch."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    jobs: JobStore
    streams: StreamStore
    frames: FrameSource
    prober: Prober
    guard: UrlGuard
    storage: FileStore
    breakers: BreakerStore
    reaper: Reaper
    media_dir: str | None
    producer: str
    attempts: int = 3
    backoff_seconds: float = 0.5
    keep_snapshots: int = 100
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], datetime] = _utcnow
    # (stream, url) of the probes running in this process: a second command joins the first.
    probing: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    # Frames of hot streams (hot_pool.py): a capture takes one younger than this at once.
    hot_frames: HotFrames | None = None
    hot_fresh_seconds: float = 2.0


async def capture_snapshot(
    command: CaptureSnapshot,
    tenant_id: uuid.UUID | None,
    deps: Deps,
    *,
    media_done: Callable[[], None] = lambda: None,
) -> None:
    """``media_done`` is called once the frame is in hand (or the capture failed): what
    follows (storing, committing) needs no ffmpeg slot, so the consumer gives the tenant's
    slot to the next command then, and a slot never idles through a commit."""
    loaded = await deps.jobs.load(command.job_id)
    if loaded is None:
        log.info("job %s is gone (stream deleted?); nothing to do", command.job_id)
        return
    job = loaded.job
    _check_scope(job.tenant_id, tenant_id, "job")
    if job.stream_id != command.stream_id:
        raise PermanentFailure(f"job {job.id} belongs to another stream")
    if job.finished:
        log.info("job %s is already %s; redelivery ignored", job.id, job.status)
        return

    breaker = await deps.breakers.load(job.stream_id)
    if breaker.is_open(deps.clock()):
        # Fail fast: no ffmpeg slot for a source that keeps failing.
        failed = job.fail(breaker.refusal(), CIRCUIT_OPEN, deps.clock())
        if not await deps.jobs.save(failed, job.version, [job_event(failed, deps.producer)]):
            await _settle(deps.jobs, job.id)
            return
        raise PermanentFailure(failed.error or "circuit open")

    running = job.start(deps.clock())
    if not await deps.jobs.save(running, job.version, [job_event(running, deps.producer)]):
        raise StaleState(f"job {job.id} changed while starting")

    async def capture_once() -> bytes:
        url = _parse(loaded.stream_url, deps.media_dir)
        await deps.guard.check(url)
        with media_attempt(job.stream_id, tries.count):
            return (await deps.frames.capture(url)).data

    tries = _Tries()
    try:
        data = None
        if loaded.stream_hot:  # any other stream has no frame to find: no Redis round trip
            data = await fresh_hot_frame(
                deps.hot_frames, job.stream_id, deps.hot_fresh_seconds, deps.clock()
            )
        if data is None:
            data = await _with_retries(capture_once, deps, tries)
    except MediaError as exc:
        media_done()
        failed = running.fail(exc.reason, exc.category, deps.clock(), extra_attempts=tries.extra)
        if not await deps.jobs.save(failed, running.version, [job_event(failed, deps.producer)]):
            await _settle(deps.jobs, job.id)
            return
        log.warning("capture of job %s failed: %s", job.id, exc.reason)
        await _count_failure(deps, job.stream_id, exc.reason)
        raise PermanentFailure(exc.reason) from None

    media_done()
    # Written (temp file + rename) before the row that references it commits.
    stored = await deps.storage.put(data, "image/jpeg")
    width, height = jpeg_dimensions(data) or (None, None)
    snapshot = Snapshot(
        id=uuid.uuid4(), tenant_id=job.tenant_id, stream_id=job.stream_id, job_id=job.id,
        storage_key=stored.key, content_type=stored.content_type, size_bytes=stored.size_bytes,
        sha256=stored.sha256, width=width, height=height,
    )  # fmt: skip
    done = running.succeed(snapshot.id, deps.clock(), extra_attempts=tries.extra)
    events = [snapshot_created(snapshot, deps.producer), job_event(done, deps.producer, snapshot)]
    pruned = await deps.jobs.save_with_snapshot(
        done, running.version, snapshot, events, deps.keep_snapshots
    )
    if pruned is None:
        await _settle(deps.jobs, job.id)
        return
    log.info("job %s captured snapshot %s", job.id, snapshot.id)
    await _close_breaker(deps, job.stream_id, breaker)
    if pruned:
        await _release_files(deps, [p.storage_key for p in pruned])


async def probe_stream(command: ProbeStream, tenant_id: uuid.UUID | None, deps: Deps) -> None:
    """Probe a pending stream once, however many commands ask for it.

    Every change that asks for a probe (a new stream, a new URL, enabled again) sets the
    stream ``pending``, so a command that finds it otherwise was answered by an earlier
    probe. A command for a stream whose URL this process is already probing joins that
    probe. A change made during the probe that keeps the URL (a new name, new tags) keeps
    its result; a new URL drops it, since that change queued a probe of its own.
    """
    stream = await deps.streams.load(command.stream_id)
    if stream is None:
        log.info("stream %s is gone; nothing to probe", command.stream_id)
        return
    _check_scope(stream.tenant_id, tenant_id, "stream")
    if stream.status != "pending":
        log.info("stream %s is %s, already probed; nothing to do", stream.id, stream.status)
        return
    key = (stream.id, stream.url)
    if key in deps.probing:
        log.info("stream %s is being probed already; this command joins it", stream.id)
        return
    deps.probing.add(key)
    try:
        await _probe(stream, deps)
    finally:
        deps.probing.discard(key)


async def _probe(stream: Stream, deps: Deps) -> None:
    breaker = await deps.breakers.load(stream.id)
    if breaker.is_open(deps.clock()):
        refusal = breaker.refusal()
        await _save_probe(deps, stream, lambda s: s.failed(refusal, CIRCUIT_OPEN, deps.clock()))
        return

    async def probe_once() -> ProbeResult:
        url = _parse(stream.url, deps.media_dir)
        await deps.guard.check(url)
        with media_attempt(stream.id, tries.count):
            return await deps.prober.probe(url)

    tries = _Tries()
    try:
        result = await _with_retries(probe_once, deps, tries)
    except MediaError as exc:
        log.warning("probe of stream %s failed: %s", stream.id, exc.reason)
        reason, category = exc.reason, exc.category
        await _save_probe(deps, stream, lambda s: s.failed(reason, category, deps.clock()))
        await _count_failure(deps, stream.id, reason)
        return
    await _save_probe(deps, stream, lambda s: s.probed(result, deps.clock()))
    await _close_breaker(deps, stream.id, breaker)


async def _save_probe(deps: Deps, probed: Stream, outcome: Callable[[Stream], Stream]) -> None:
    """Write ``outcome`` onto the stream as it is now, as long as its URL is the one probed."""
    current: Stream | None = probed
    for _ in range(SAVE_TRIES):
        if current is None:
            return  # deleted while we probed
        if current.url != probed.url:
            log.info("stream %s has a new URL; its own probe will tell", probed.id)
            return
        updated = outcome(current)
        if await deps.streams.save(
            updated, current.version, [stream_updated(updated, deps.producer)]
        ):
            return
        current = await deps.streams.load(probed.id)  # changed meanwhile (renamed...)
    raise StaleState(f"stream {probed.id} keeps changing; the probe's result is not written")


async def _count_failure(deps: Deps, stream_id: uuid.UUID, reason: str) -> None:
    """One more consecutive failure; when it opens the breaker, the stream says ``error``."""
    now = deps.clock()
    before, after = await deps.breakers.update(
        stream_id, lambda state: state.after_failure(reason, now, deps.breaker)
    )
    if not after.opened_by(before):
        return
    log.warning("circuit opened for stream %s until %s", stream_id, after.open_until)
    stream = await deps.streams.load(stream_id)
    if stream is None or stream.status == "disabled":
        return
    updated = stream.failed(after.refusal(), CIRCUIT_OPEN, now)
    # A concurrent change wins; the breaker itself is already recorded.
    await deps.streams.save(updated, stream.version, [stream_updated(updated, deps.producer)])


async def _close_breaker(deps: Deps, stream_id: uuid.UUID, breaker: BreakerState) -> None:
    if breaker.failures or breaker.trips:  # healthy streams cost no extra query
        await deps.breakers.close(stream_id)


async def _release_files(deps: Deps, keys: list[str]) -> None:
    # The rows are gone and committed; a file left behind here is the sweep's to remove.
    try:
        await deps.reaper.release(keys)
    except Exception:
        log.exception("could not delete pruned snapshot files; the orphan sweep will")


def _check_scope(owner: uuid.UUID, claimed: uuid.UUID | None, what: str) -> None:
    if claimed is not None and claimed != owner:
        raise PermanentFailure(f"command's tenant does not own the {what}")


def _parse(url: str, media_dir: str | None) -> StreamUrl:
    # The database is not a trust boundary we skip: check the URL again before ffmpeg.
    try:
        return parse_stream_url(url, media_dir)
    except InvalidStreamUrl as exc:
        raise permanent(f"invalid stream url: {exc}") from None


async def _settle(jobs: JobStore, job_id: uuid.UUID) -> None:
    """A guarded write found the job changed: fine if another delivery finished it."""
    current = await jobs.load(job_id)
    if current is None or current.job.finished:
        return
    raise StaleState(f"job {job_id} changed during the capture")


class _Tries:
    def __init__(self) -> None:
        self.count = 0

    @property
    def extra(self) -> int:
        """Attempts beyond the one ``Job.start`` already counted."""
        return max(self.count - 1, 0)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, MediaError) and exc.transient


async def _with_retries(action: Callable[[], Awaitable[T]], deps: Deps, tries: _Tries) -> T:
    """Run ``action``; retry transient MediaErrors with jittered exponential backoff."""

    async def counted() -> T:
        tries.count += 1
        return await action()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(deps.attempts),
        wait=wait_random_exponential(
            multiplier=deps.backoff_seconds, max=deps.backoff_seconds * 16
        ),
        retry=retry_if_exception(_is_transient),
        reraise=True,
    )
    return await retrying(counted)
