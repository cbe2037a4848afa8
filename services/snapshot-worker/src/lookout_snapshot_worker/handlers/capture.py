"""snapshot.capture: one frame of the job's stream, stored and committed with the job.

A finished job ignores its command; a redelivered capture of a job left "running" by a dead
worker simply runs again; every write is guarded by the version it was based on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot

from lookout_snapshot_worker.domain.attempts import media_attempt
from lookout_snapshot_worker.domain.events import job_event, snapshot_created
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.jobs import Snapshot
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.handlers.common import (
    CIRCUIT_OPEN,
    StaleState,
    Tries,
    check_scope,
    close_breaker,
    count_failure,
    parse_url,
    with_retries,
)
from lookout_snapshot_worker.handlers.hot_snapshot import fresh_hot_frame
from lookout_snapshot_worker.ports import Deps, JobStore

log = logging.getLogger(__name__)


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
    check_scope(job.tenant_id, tenant_id, "job")
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
        url = parse_url(loaded.stream_url, deps.media_dir)
        await deps.guard.check(url)
        with media_attempt(job.stream_id, tries.count):
            return (await deps.frames.capture(url)).data

    tries = Tries()
    try:
        data = None
        if loaded.stream_hot:  # any other stream has no frame to find: no Redis round trip
            data = await fresh_hot_frame(
                deps.hot_frames, job.stream_id, deps.hot_fresh_seconds, deps.clock()
            )
        if data is None:
            data = await with_retries(capture_once, deps, tries)
    except MediaError as exc:
        media_done()
        failed = running.fail(exc.reason, exc.category, deps.clock(), extra_attempts=tries.extra)
        if not await deps.jobs.save(failed, running.version, [job_event(failed, deps.producer)]):
            await _settle(deps.jobs, job.id)
            return
        log.warning("capture of job %s failed: %s", job.id, exc.reason)
        await count_failure(deps, job.stream_id, exc.reason)
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
    await close_breaker(deps, job.stream_id, breaker)
    if pruned:
        await _release_files(deps, [p.storage_key for p in pruned])


async def _release_files(deps: Deps, keys: list[str]) -> None:
    # The rows are gone and committed; a file left behind here is the sweep's to remove.
    try:
        await deps.reaper.release(keys)
    except Exception:
        log.exception("could not delete pruned snapshot files; the orphan sweep will")


async def _settle(jobs: JobStore, job_id: uuid.UUID) -> None:
    """A guarded write found the job changed: fine if another delivery finished it."""
    current = await jobs.load(job_id)
    if current is None or current.job.finished:
        return
    raise StaleState(f"job {job_id} changed during the capture")
