"""Capture and probe handlers against in-memory twins of every port."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.hot_frames import HotFrame
from lookout_shared.storage import StoredObject
from lookout_snapshot_worker.adapters.memory import (
    InMemoryBreakerStore,
    InMemoryHotFrames,
    InMemoryJobStore,
    InMemoryReaper,
    InMemoryStorage,
    InMemoryStreamStore,
    Outbox,
    ScriptedMedia,
    StaticGuard,
)
from lookout_snapshot_worker.domain.breaker import CLOSED, BreakerPolicy
from lookout_snapshot_worker.domain.failures import MediaError, permanent, transient
from lookout_snapshot_worker.domain.jobs import Job
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream
from lookout_snapshot_worker.domain.tenant_slots import TenantSlots
from lookout_snapshot_worker.entrypoints.consumer import CommandConsumer
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.handlers.common import StaleState
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.ports import Deps

# SOI + SOF0 (height 2, width 4): enough JPEG for the handlers.
JPEG = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x02\x00\x04\x03" + b"\x00" * 12


@dataclass
class World:
    deps: Deps
    jobs: InMemoryJobStore
    streams: InMemoryStreamStore
    media: ScriptedMedia
    storage: InMemoryStorage
    outbox: Outbox
    tenant: uuid.UUID
    media_dir: Path


def world(tmp_path: Path, *outcomes: bytes | ProbeResult | MediaError, attempts: int = 3) -> World:
    outbox = Outbox()
    jobs, streams = InMemoryJobStore(outbox), InMemoryStreamStore(outbox)
    media, storage = ScriptedMedia(*(outcomes or (JPEG,))), InMemoryStorage()
    deps = Deps(
        jobs=jobs, streams=streams, frames=media, prober=media,
        guard=StaticGuard({"10.0.0.9"}), storage=storage, breakers=InMemoryBreakerStore(),
        reaper=InMemoryReaper(jobs, storage), media_dir=str(tmp_path),
        producer="snapshot-worker", attempts=attempts, backoff_seconds=0,
    )  # fmt: skip
    return World(deps, jobs, streams, media, storage, outbox, uuid.uuid4(), tmp_path)


def add_job(
    w: World, url: str | None = None, status: str = "queued", *, hot: bool = False
) -> CaptureSnapshot:
    if url is None:
        (w.media_dir / "cam.mp4").touch()
        url = (w.media_dir / "cam.mp4").as_uri()
    job = Job(uuid.uuid4(), w.tenant, uuid.uuid4(), status, attempts=0, version=1)  # type: ignore[arg-type]
    w.jobs.add(job, url, hot=hot)
    return CaptureSnapshot(job_id=job.id, stream_id=job.stream_id)


async def test_capture_succeeds_with_one_snapshot_and_its_events(tmp_path: Path) -> None:
    w = world(tmp_path)
    command = add_job(w)
    await capture_snapshot(command, w.tenant, w.deps)

    job = w.jobs.jobs[command.job_id]
    snapshot = w.jobs.snapshots[command.job_id]
    assert (job.status, job.version, job.attempts, job.snapshot_id) == (
        "succeeded", 3, 1, snapshot.id,
    )  # fmt: skip
    assert (snapshot.width, snapshot.height, snapshot.size_bytes) == (4, 2, len(JPEG))
    assert w.storage.objects == {snapshot.storage_key: JPEG}
    assert w.outbox.types() == [
        "snapshot_job.started",
        "snapshot.created",
        "snapshot_job.succeeded",
    ]
    started, created, succeeded = w.outbox.events
    assert (started.entity_id, started.entity_version, started.tenant_id) == (job.id, 2, w.tenant)
    assert (created.entity_id, created.entity_version) == (snapshot.id, 1)
    assert succeeded.entity_version == 3
    assert succeeded.data["snapshot_id"] == str(snapshot.id)


async def test_a_redelivered_command_for_a_finished_job_does_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    command = add_job(w)
    await capture_snapshot(command, w.tenant, w.deps)
    before = (w.jobs.jobs[command.job_id], len(w.outbox.events), len(w.media.calls))
    await capture_snapshot(command, w.tenant, w.deps)
    assert (w.jobs.jobs[command.job_id], len(w.outbox.events), len(w.media.calls)) == before
    assert len(w.jobs.snapshots) == 1 and len(w.storage.objects) == 1


async def test_a_job_left_running_by_a_dead_worker_runs_again(tmp_path: Path) -> None:
    w = world(tmp_path)
    command = add_job(w, status="running")
    await capture_snapshot(command, w.tenant, w.deps)
    assert w.jobs.jobs[command.job_id].status == "succeeded"
    assert len(w.jobs.snapshots) == 1


async def test_a_vanished_job_is_nothing_to_do(tmp_path: Path) -> None:
    w = world(tmp_path)
    await capture_snapshot(
        CaptureSnapshot(job_id=uuid.uuid4(), stream_id=uuid.uuid4()), None, w.deps
    )
    assert w.outbox.events == [] and w.media.calls == []


async def test_transient_failures_are_retried_within_the_bound(tmp_path: Path) -> None:
    w = world(tmp_path, transient("Connection refused"), transient("timed out"), JPEG)
    command = add_job(w)
    await capture_snapshot(command, w.tenant, w.deps)
    job = w.jobs.jobs[command.job_id]
    assert job.status == "succeeded" and job.attempts == 3
    assert len(w.media.calls) == 3


async def test_exhausted_retries_fail_the_job_and_dead_letter(tmp_path: Path) -> None:
    w = world(tmp_path, transient("Connection refused"), attempts=2)
    command = add_job(w)
    with pytest.raises(PermanentFailure, match="Connection refused"):
        await capture_snapshot(command, w.tenant, w.deps)
    job = w.jobs.jobs[command.job_id]
    assert (job.status, job.attempts, job.version, job.error, job.error_category) == (
        "failed", 2, 3, "Connection refused", "refused",
    )  # fmt: skip
    assert len(w.media.calls) == 2
    assert w.outbox.types() == ["snapshot_job.started", "snapshot_job.failed"]
    # Events reach every role in the stream's room: they carry the category only.
    assert w.outbox.events[-1].data["error"] == "refused"
    assert w.jobs.snapshots == {} and w.storage.objects == {}


async def test_a_permanent_failure_is_not_retried(tmp_path: Path) -> None:
    w = world(tmp_path, permanent("Server returned 404 Not Found"), JPEG)
    command = add_job(w)
    with pytest.raises(PermanentFailure, match="404"):
        await capture_snapshot(command, w.tenant, w.deps)
    assert len(w.media.calls) == 1
    assert w.jobs.jobs[command.job_id].status == "failed"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "inside the media directory"),
        ("gopher://cam/x", "not allowed"),
        ("rtsp://10.0.0.9/live", "refused"),
    ],
)
async def test_urls_are_checked_again_before_ffmpeg(tmp_path: Path, url: str, reason: str) -> None:
    w = world(tmp_path)
    command = add_job(w, url=url)
    with pytest.raises(PermanentFailure, match=reason):
        await capture_snapshot(command, w.tenant, w.deps)
    assert w.media.calls == []
    assert w.jobs.jobs[command.job_id].status == "failed"


async def test_another_tenants_command_changes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    command = add_job(w)
    with pytest.raises(PermanentFailure, match="tenant"):
        await capture_snapshot(command, uuid.uuid4(), w.deps)
    assert w.jobs.jobs[command.job_id].status == "queued" and w.outbox.events == []


async def test_a_job_changed_while_starting_is_requeued(tmp_path: Path) -> None:
    w = world(tmp_path)
    command = add_job(w)
    real_load = w.jobs.load

    async def stale_load(job_id: uuid.UUID):  # type: ignore[no-untyped-def]
        loaded = await real_load(job_id)
        assert loaded is not None
        return replace(loaded, job=replace(loaded.job, version=0))  # read before a change

    w.jobs.load = stale_load  # type: ignore[method-assign]
    with pytest.raises(StaleState):
        await capture_snapshot(command, w.tenant, w.deps)
    assert w.outbox.events == []


def add_stream(w: World, enabled: bool = True) -> Stream:
    stream = Stream(
        uuid.uuid4(), w.tenant, "front door", "rtsp://cam.example/live", "rtsp", "pending",
        enabled, version=1, tags=["outdoor"],
    )  # fmt: skip
    w.streams.streams[stream.id] = stream
    return stream


async def test_probe_records_size_codec_and_online(tmp_path: Path) -> None:
    w = world(tmp_path, ProbeResult(1280, 720, "h264", 29.97))
    stream = add_stream(w)
    await probe_stream(ProbeStream(stream_ids=[stream.id]), w.tenant, w.deps)
    now = w.streams.streams[stream.id]
    assert (now.width, now.height, now.codec, now.status, now.version) == (
        1280, 720, "h264", "online", 2,
    )  # fmt: skip
    [event] = w.outbox.events
    assert (event.type, event.entity_id, event.entity_version) == ("stream.updated", stream.id, 2)
    assert event.data == {
        "name": "front door", "kind": "rtsp", "status": "online", "enabled": True,
        "tags": ["outdoor"], "width": 1280, "height": 720, "codec": "h264", "fps": 29.97,
        "hot": None, "hot_mode": None,  # the probe does not say; the api's events do
    }  # fmt: skip


async def test_probe_failure_marks_the_stream_in_error(tmp_path: Path) -> None:
    w = world(tmp_path, permanent("Server returned 401 Unauthorized"))
    stream = add_stream(w)
    await probe_stream(ProbeStream(stream_ids=[stream.id]), w.tenant, w.deps)
    now = w.streams.streams[stream.id]
    assert (now.status, now.last_error, now.last_error_category, now.version) == (
        "error", "Server returned 401 Unauthorized", "unauthorized", 2,
    )  # fmt: skip
    assert w.outbox.events[0].data["status"] == "error"


async def test_probing_a_deleted_stream_does_nothing(tmp_path: Path) -> None:
    w = world(tmp_path, ProbeResult(1, 1, "h264"))
    await probe_stream(ProbeStream(stream_ids=[uuid.uuid4()]), w.tenant, w.deps)
    assert w.outbox.events == [] and w.media.calls == []


async def test_a_stream_deleted_during_the_probe_is_left_alone(tmp_path: Path) -> None:
    w = world(tmp_path, ProbeResult(1, 1, "h264"))
    stream = add_stream(w)

    class DeletingProber(ScriptedMedia):
        async def probe(self, url):  # type: ignore[no-untyped-def]
            del w.streams.streams[stream.id]
            return await super().probe(url)

    prober = DeletingProber(ProbeResult(1, 1, "h264"))
    deps = replace(w.deps, prober=prober)
    await probe_stream(ProbeStream(stream_ids=[stream.id]), w.tenant, deps)
    assert w.outbox.events == []


async def test_succeeded_carries_the_snapshot_and_duration(tmp_path: Path) -> None:
    w = world(tmp_path)
    ticks = iter(range(100))
    w.deps = replace(w.deps, clock=lambda: datetime(2025, 1, 1, tzinfo=UTC) + timedelta(
        milliseconds=250 * next(ticks)))  # fmt: skip
    command = add_job(w)
    await capture_snapshot(command, w.tenant, w.deps)
    succeeded = w.outbox.events[-1]
    snapshot = w.jobs.snapshots[command.job_id]
    assert succeeded.type == "snapshot_job.succeeded"
    assert succeeded.data["snapshot_id"] == str(snapshot.id)
    assert (succeeded.data["bytes"], succeeded.data["width"], succeeded.data["height"]) == (
        len(JPEG), 4, 2,
    )  # fmt: skip
    assert succeeded.data["duration_ms"] > 0


async def test_retention_keeps_the_newest_and_deletes_unshared_files(tmp_path: Path) -> None:
    other = JPEG + b"\x01"
    w = world(tmp_path, JPEG, other, other)
    w.deps = replace(w.deps, keep_snapshots=1)
    first = add_job(w)
    await capture_snapshot(first, w.tenant, w.deps)
    second = add_job(w)
    second = CaptureSnapshot(job_id=second.job_id, stream_id=first.stream_id)
    w.jobs.jobs[second.job_id] = replace(w.jobs.jobs[second.job_id], stream_id=first.stream_id)
    w.outbox.events.clear()
    await capture_snapshot(second, w.tenant, w.deps)

    assert list(w.jobs.snapshots) == [second.job_id]
    kept = w.jobs.snapshots[second.job_id]
    assert list(w.storage.objects.values()) == [other]  # the pruned one's file went
    deleted = [e for e in w.outbox.events if e.type == "snapshot.deleted"]
    assert len(deleted) == 1 and deleted[0].entity_id != kept.id
    assert deleted[0].entity_version == 2


async def test_the_breaker_opens_fails_fast_and_marks_the_stream(tmp_path: Path) -> None:
    w = world(tmp_path, permanent("Server returned 404 Not Found"), attempts=1)
    w.deps = replace(w.deps, breaker=BreakerPolicy(threshold=2))
    stream = add_stream(w)
    for _ in range(2):
        command = add_job(w, stream.url)
        w.jobs.jobs[command.job_id] = replace(w.jobs.jobs[command.job_id], stream_id=stream.id)
        with pytest.raises(PermanentFailure, match="404"):
            await capture_snapshot(
                CaptureSnapshot(job_id=command.job_id, stream_id=stream.id), w.tenant, w.deps
            )
    assert len(w.media.calls) == 2
    marked = w.streams.streams[stream.id]
    assert marked.status == "error" and "circuit open" in (marked.last_error or "")
    assert marked.last_error_category == "circuit_open"
    assert w.outbox.types()[-1] == "stream.updated"

    # Open: the next command fails at once, without ffmpeg.
    command = add_job(w, stream.url)
    w.jobs.jobs[command.job_id] = replace(w.jobs.jobs[command.job_id], stream_id=stream.id)
    with pytest.raises(PermanentFailure, match="circuit open"):
        await capture_snapshot(
            CaptureSnapshot(job_id=command.job_id, stream_id=stream.id), w.tenant, w.deps
        )
    assert len(w.media.calls) == 2
    assert w.jobs.jobs[command.job_id].status == "failed"

    # After the delay, a real attempt; its success closes the breaker.
    later = datetime.now(UTC) + timedelta(minutes=5)
    w.media.outcomes = [JPEG]
    w.deps = replace(w.deps, clock=lambda: later)
    command = add_job(w, stream.url)
    w.jobs.jobs[command.job_id] = replace(w.jobs.jobs[command.job_id], stream_id=stream.id)
    await capture_snapshot(
        CaptureSnapshot(job_id=command.job_id, stream_id=stream.id), w.tenant, w.deps
    )
    assert w.jobs.jobs[command.job_id].status == "succeeded"
    assert await w.deps.breakers.load(stream.id) == CLOSED


async def test_a_stream_renamed_during_its_probe_keeps_the_result_without_a_second_probe(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    stream = add_stream(w)

    class RenamingProber(ScriptedMedia):
        async def probe(self, url):  # type: ignore[no-untyped-def]
            current = w.streams.streams[stream.id]  # the api saves a new name meanwhile
            w.streams.streams[stream.id] = replace(current, name="gate", version=2)
            return await super().probe(url)

    prober = RenamingProber(ProbeResult(640, 360, "h264"))
    await probe_stream(
        ProbeStream(stream_ids=[stream.id]), w.tenant, replace(w.deps, prober=prober)
    )
    now = w.streams.streams[stream.id]
    assert (now.name, now.status, now.width, now.version) == ("gate", "online", 640, 3)
    assert len(prober.calls) == 1


async def test_a_new_url_during_the_probe_drops_its_result(tmp_path: Path) -> None:
    w = world(tmp_path)
    stream = add_stream(w)

    class MovingProber(ScriptedMedia):
        async def probe(self, url):  # type: ignore[no-untyped-def]
            current = w.streams.streams[stream.id]
            w.streams.streams[stream.id] = replace(current, url="rtsp://cam.example/b", version=2)
            return await super().probe(url)

    prober = MovingProber(ProbeResult(640, 360, "h264"))
    await probe_stream(
        ProbeStream(stream_ids=[stream.id]), w.tenant, replace(w.deps, prober=prober)
    )
    now = w.streams.streams[stream.id]
    # The new URL's own probe command tells what it is; this one found the old one.
    assert (now.status, now.width, now.version) == ("pending", None, 2)
    assert w.outbox.events == []


async def test_a_probe_command_for_a_stream_already_probed_runs_no_ffprobe(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, ProbeResult(640, 360, "h264"))
    stream = add_stream(w)
    w.streams.streams[stream.id] = replace(stream, status="online")
    await probe_stream(ProbeStream(stream_ids=[stream.id]), w.tenant, w.deps)
    assert w.media.calls == [] and w.outbox.events == []


async def test_a_second_probe_command_joins_the_probe_in_flight(tmp_path: Path) -> None:
    w = world(tmp_path)
    stream = add_stream(w)
    release = asyncio.Event()

    class SlowProber(ScriptedMedia):
        async def probe(self, url):  # type: ignore[no-untyped-def]
            await release.wait()
            return await super().probe(url)

    deps = replace(w.deps, prober=SlowProber(ProbeResult(640, 360, "h264")))
    command = ProbeStream(stream_ids=[stream.id])
    first = asyncio.create_task(probe_stream(command, w.tenant, deps))
    await asyncio.sleep(0.01)
    # Returns at once: it joined the first (which still waits for its source).
    await asyncio.wait_for(probe_stream(command, w.tenant, deps), 5)
    release.set()
    await first
    assert len(deps.prober.calls) == 1  # type: ignore[attr-defined]
    assert w.streams.streams[stream.id].status == "online"
    assert deps.probing == set()


@pytest.mark.parametrize(("age", "ffmpeg_runs"), [(0.5, 0), (5.0, 1)])
async def test_a_capture_takes_a_fresh_hot_frame_and_runs_ffmpeg_only_for_a_stale_one(
    tmp_path: Path, age: float, ffmpeg_runs: int
) -> None:
    w = world(tmp_path, b"\xff\xd8cold")
    hot = InMemoryHotFrames()
    w.deps = replace(w.deps, hot_frames=hot, hot_fresh_seconds=2.0)
    command = add_job(w, hot=True)
    captured_at = w.deps.clock().timestamp() - age
    hot.frames[command.stream_id] = HotFrame(JPEG, captured_at, 4, 2, "worker-1")
    await capture_snapshot(command, w.tenant, w.deps)
    assert len(w.media.calls) == ffmpeg_runs
    stored = w.storage.objects[w.jobs.snapshots[command.job_id].storage_key]
    assert stored == (JPEG if ffmpeg_runs == 0 else b"\xff\xd8cold")


async def test_a_capture_of_a_stream_that_is_not_hot_does_not_look_for_a_hot_frame(
    tmp_path: Path,
) -> None:
    """Every capture asked Redis for a frame first, though only a hot stream has one: a round
    trip per capture for nothing (and a frame left from a stream just turned cold taken)."""
    w = world(tmp_path, b"\xff\xd8cold")
    hot = InMemoryHotFrames()
    w.deps = replace(w.deps, hot_frames=hot, hot_fresh_seconds=2.0)
    command = add_job(w, hot=False)
    hot.frames[command.stream_id] = HotFrame(JPEG, w.deps.clock().timestamp(), 4, 2, "worker-1")
    await capture_snapshot(command, w.tenant, w.deps)
    assert len(w.media.calls) == 1
    assert w.storage.objects[w.jobs.snapshots[command.job_id].storage_key] == b"\xff\xd8cold"


class GatedStorage(InMemoryStorage):
    """Holds every write until the test opens the gate: a slow disk, or a slow commit."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.arrivals: asyncio.Queue[None] = asyncio.Queue()

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        self.arrivals.put_nowait(None)
        await self.gate.wait()
        return await super().put(data, content_type)


async def test_a_capture_gives_its_tenant_slot_to_the_next_command_while_it_stores(
    tmp_path: Path,
) -> None:
    """Storing and committing need no ffmpeg: a tenant's slot held through them stood idle
    (the worker's ffmpeg slots ran ~75% busy under a backlog)."""
    w = world(tmp_path, JPEG, JPEG)
    storage = GatedStorage()
    w.deps = replace(w.deps, storage=storage)
    consumer = CommandConsumer(
        w.deps, captures=TenantSlots(1, 1), probes=TenantSlots(1, 1), tenant_wait=5
    )
    first, second = add_job(w), add_job(w)

    def envelope(command: CaptureSnapshot) -> Envelope:
        return make_envelope(
            "snapshot.capture", command, producer="test", tenant_id=w.tenant,
            entity_id=command.job_id, entity_version=1,
        )  # fmt: skip

    one = asyncio.create_task(consumer.on_capture(envelope(first)))
    await asyncio.wait_for(storage.arrivals.get(), 2)  # it has its frame, and stores it
    assert consumer.captures.running(w.tenant) == 0
    two = asyncio.create_task(consumer.on_capture(envelope(second)))
    # Its frame comes at once, not after the tenant wait (5 s): the slot was free.
    await asyncio.wait_for(storage.arrivals.get(), 2)
    storage.gate.set()
    await asyncio.gather(one, two)
    assert {w.jobs.jobs[c.job_id].status for c in (first, second)} == {"succeeded"}
