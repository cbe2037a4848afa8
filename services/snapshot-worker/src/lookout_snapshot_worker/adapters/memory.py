"""In-memory twins of the ports, for unit tests (and for trying handlers without servers)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lookout_shared.envelope import Envelope
from lookout_shared.hot_frames import HotFrame
from lookout_shared.storage import EXTENSIONS, StoredObject
from lookout_shared.stream_urls import StreamUrl

from lookout_snapshot_worker.domain.breaker import CLOSED, BreakerState
from lookout_snapshot_worker.domain.events import snapshot_deleted
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.jobs import Job, Snapshot
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream
from lookout_snapshot_worker.ports import Frame, LoadedJob, Pruned


@dataclass
class Outbox:
    """Events "committed" with the writes, in order."""

    events: list[Envelope] = field(default_factory=list)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class InMemoryJobStore:
    def __init__(self, outbox: Outbox) -> None:
        self.jobs: dict[uuid.UUID, Job] = {}
        self.urls: dict[uuid.UUID, str] = {}
        self.hot: set[uuid.UUID] = set()  # jobs whose stream is hot
        self.snapshots: dict[uuid.UUID, Snapshot] = {}  # by job id, like the unique index
        self.outbox = outbox

    def add(self, job: Job, stream_url: str, *, hot: bool = False) -> None:
        self.jobs[job.id] = job
        self.urls[job.id] = stream_url
        if hot:
            self.hot.add(job.id)

    async def load(self, job_id: uuid.UUID) -> LoadedJob | None:
        job = self.jobs.get(job_id)
        return None if job is None else LoadedJob(job, self.urls[job_id], job_id in self.hot)

    async def save(self, job: Job, expected_version: int, events: Sequence[Envelope]) -> bool:
        if not self._may_write(job.id, expected_version):
            return False
        self.jobs[job.id] = job
        self.outbox.events.extend(events)
        return True

    async def save_with_snapshot(
        self,
        job: Job,
        expected_version: int,
        snapshot: Snapshot,
        events: Sequence[Envelope],
        keep: int,
    ) -> tuple[Pruned, ...] | None:
        if not self._may_write(job.id, expected_version) or snapshot.job_id in self.snapshots:
            return None
        self.jobs[job.id] = job
        self.snapshots[snapshot.job_id] = snapshot  # dicts keep insertion order: oldest first
        of_stream = [s for s in self.snapshots.values() if s.stream_id == snapshot.stream_id]
        pruned = of_stream[: max(len(of_stream) - keep, 0)]
        for old in pruned:
            del self.snapshots[old.job_id]
        self.outbox.events.extend(events)
        self.outbox.events.extend(
            snapshot_deleted(old.id, old.tenant_id, old.stream_id, "snapshot-worker")
            for old in pruned
        )
        return tuple(Pruned(old.id, old.storage_key) for old in pruned)

    def _may_write(self, job_id: uuid.UUID, expected_version: int) -> bool:
        current = self.jobs.get(job_id)
        return current is not None and not current.finished and current.version == expected_version


class InMemoryStreamStore:
    def __init__(self, outbox: Outbox) -> None:
        self.streams: dict[uuid.UUID, Stream] = {}
        self.outbox = outbox

    async def load(self, stream_id: uuid.UUID) -> Stream | None:
        return self.streams.get(stream_id)

    async def save(self, stream: Stream, expected_version: int, events: Sequence[Envelope]) -> bool:
        current = self.streams.get(stream.id)
        if current is None or current.version != expected_version:
            return False
        self.streams[stream.id] = stream
        self.outbox.events.extend(events)
        return True


class ScriptedMedia:
    """A FrameSource and Prober that plays back outcomes in order (the last one repeats)."""

    def __init__(self, *outcomes: bytes | ProbeResult | MediaError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[StreamUrl] = []

    def _next(self, url: StreamUrl) -> bytes | ProbeResult:
        self.calls.append(url)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, MediaError):
            raise outcome
        return outcome

    async def capture(self, url: StreamUrl) -> Frame:
        outcome = self._next(url)
        assert isinstance(outcome, bytes)
        return Frame(outcome)

    async def probe(self, url: StreamUrl) -> ProbeResult:
        outcome = self._next(url)
        assert isinstance(outcome, ProbeResult)
        return outcome


class StaticGuard:
    """Refuses the hosts it is given, with a permanent error, and lets the rest through."""

    def __init__(self, refused: set[str] | None = None) -> None:
        self.refused = refused or set()

    async def check(self, url: StreamUrl) -> None:
        if url.host in self.refused:
            raise MediaError(f"refused to connect to {url.host}", transient=False)


class InMemoryBreakerStore:
    def __init__(self) -> None:
        self.states: dict[uuid.UUID, BreakerState] = {}

    async def load(self, stream_id: uuid.UUID) -> BreakerState:
        return self.states.get(stream_id, CLOSED)

    async def update(
        self, stream_id: uuid.UUID, change: Callable[[BreakerState], BreakerState]
    ) -> tuple[BreakerState, BreakerState]:
        before = self.states.get(stream_id, CLOSED)
        self.states[stream_id] = after = change(before)
        return before, after

    async def close(self, stream_id: uuid.UUID) -> None:
        self.states.pop(stream_id, None)


class InMemoryReaper:
    """Deletes a released file unless a snapshot in ``jobs`` still references its key."""

    def __init__(self, jobs: InMemoryJobStore, storage: InMemoryStorage) -> None:
        self.jobs, self.storage = jobs, storage

    async def release(self, keys: Sequence[str]) -> int:
        referenced = {s.storage_key for s in self.jobs.snapshots.values()}
        gone = [key for key in dict.fromkeys(keys) if key not in referenced]
        for key in gone:
            await self.storage.delete(key)
        return len(gone)


class InMemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def exists(self, key: str) -> bool:
        return key in self.objects

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def listing(self) -> list[tuple[str, datetime]]:
        return [(key, datetime.now(UTC)) for key in self.objects]

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest[2:4]}/{digest}.{EXTENSIONS.get(content_type, 'bin')}"
        self.objects[key] = data
        return StoredObject(key, digest, len(data), content_type)

    def path_of(self, key: str) -> Path:
        return Path("/memory") / key


class InMemoryHotFrames:
    """The HotFrames port: frames a test puts in by stream."""

    def __init__(self) -> None:
        self.frames: dict[uuid.UUID, HotFrame] = {}

    async def latest(self, stream_id: uuid.UUID) -> HotFrame | None:
        return self.frames.get(stream_id)
