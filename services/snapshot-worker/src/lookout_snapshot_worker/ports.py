"""What the handlers need from the outside world; adapters/ implements each one."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from lookout_shared.envelope import Envelope
from lookout_shared.hot_frames import HotFrame
from lookout_shared.storage import SnapshotStorage
from lookout_shared.stream_urls import StreamUrl

from lookout_snapshot_worker.domain.breaker import BreakerPolicy, BreakerState
from lookout_snapshot_worker.domain.jobs import Job, Snapshot
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream

__all__ = [
    "BreakerStore",
    "Deps",
    "FileStore",
    "Frame",
    "FrameSource",
    "HotFrames",
    "JobStore",
    "LoadedJob",
    "Prober",
    "Pruned",
    "Reaper",
    "StreamStore",
    "UrlGuard",
]


@dataclass(frozen=True)
class LoadedJob:
    job: Job
    stream_url: str
    stream_hot: bool = False  # only a hot stream's capture looks for a published frame


@dataclass(frozen=True)
class Pruned:
    """A snapshot row retention deleted; its file goes once no row references the key."""

    snapshot_id: uuid.UUID
    storage_key: str


@dataclass(frozen=True)
class Frame:
    data: bytes  # a JPEG
    content_type: str = "image/jpeg"


class JobStore(Protocol):
    async def load(self, job_id: uuid.UUID) -> LoadedJob | None: ...

    async def save(self, job: Job, expected_version: int, events: Sequence[Envelope]) -> bool:
        """Write ``job`` and its events in one transaction, only if the stored job is still
        unfinished at ``expected_version``; False (nothing written) otherwise."""
        ...

    async def save_with_snapshot(
        self,
        job: Job,
        expected_version: int,
        snapshot: Snapshot,
        events: Sequence[Envelope],
        keep: int,
    ) -> tuple[Pruned, ...] | None:
        """Like :meth:`save`, also inserting ``snapshot`` (one per job) and enforcing
        retention in the same transaction: only the stream's newest ``keep`` snapshots stay,
        each deleted one with its snapshot.deleted event. Returns what was pruned, or None
        when nothing was written."""
        ...


class BreakerStore(Protocol):
    async def load(self, stream_id: uuid.UUID) -> BreakerState: ...

    async def update(
        self, stream_id: uuid.UUID, change: Callable[[BreakerState], BreakerState]
    ) -> tuple[BreakerState, BreakerState]:
        """Apply ``change`` atomically (one worker at a time per stream); (before, after)."""
        ...

    async def close(self, stream_id: uuid.UUID) -> None: ...


class FileStore(SnapshotStorage, Protocol):
    """Snapshot storage that can also list and delete (for retention and the orphan sweep)."""

    def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def listing(self) -> list[tuple[str, datetime]]:
        """(key, modified) of every stored file, temporary ones included."""
        ...


class Reaper(Protocol):
    async def release(self, keys: Sequence[str]) -> int:
        """Delete the files of ``keys`` no snapshot row references any more; how many."""
        ...


class StreamStore(Protocol):
    async def load(self, stream_id: uuid.UUID) -> Stream | None: ...

    async def save(self, stream: Stream, expected_version: int, events: Sequence[Envelope]) -> bool:
        """Write the probed fields and events in one transaction if the row is still at
        ``expected_version``; False when it changed or is gone."""
        ...


class UrlGuard(Protocol):
    async def check(self, url: StreamUrl) -> None:
        """Raise a permanent MediaError when the URL leads somewhere the worker may not go."""
        ...


class FrameSource(Protocol):
    async def capture(self, url: StreamUrl) -> Frame:
        """One frame as a JPEG; raises MediaError."""
        ...


class Prober(Protocol):
    async def probe(self, url: StreamUrl) -> ProbeResult:
        """The first video stream's size and codec; raises MediaError."""
        ...


class HotFrames(Protocol):
    async def latest(self, stream_id: uuid.UUID) -> HotFrame | None:
        """The frame the holder of a hot stream last published, if any is left."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Everything a handler is given: the ports, built by bootstrap, and its settings."""

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
    # Frames of hot streams (adapters/hot_pool.py): a capture takes one younger than this at once.
    hot_frames: HotFrames | None = None
    hot_fresh_seconds: float = 2.0
    # What the worker starts before it takes commands, and stops on shutdown after the last
    # in-flight one (the capture children).
    start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
