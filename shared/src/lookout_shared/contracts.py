"""Payloads of every command and event, keyed by message type.

Commands go to ``lookout.commands`` with the queue name as routing key; events go to
``lookout.events`` with their type (``<entity>.<verb>``) as routing key. Payloads never carry
a stream URL: it may hold credentials, and whoever needs it reads it from Postgres.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

# A snapshot is never changed after it is written: its creation is entity version 1 and its
# deletion version 2. Its row has no version column; whoever reads one as a state (the count
# rebuild) takes version 0, below both, so any event about it still applies.
SNAPSHOT_CREATED_VERSION = 1
SNAPSHOT_DELETED_VERSION = 2
SNAPSHOT_ROW_VERSION = 0

StreamStatus = Literal["pending", "online", "error", "disabled"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
# Why a capture or probe failed, in words that say nothing of the camera (no host, path or
# credentials): what viewers and event subscribers learn of a failure. Operators also read
# the detail (a job's ``error``, a stream's ``last_error``). The database checks the set.
ErrorCategory = Literal[
    "timeout",  # the source did not answer in time
    "refused",  # the source's host refused or reset the connection
    "unreachable",  # its name does not resolve, or there is no route to it
    "unauthorized",  # the source wants other credentials, or forbids access (401, 403)
    "not_found",  # the source has no such stream, path or file (404)
    "invalid_media",  # the source answered, but with no decodable video
    "source_error",  # the source answered with an error (5xx) or broke off
    "not_allowed",  # the URL is one the worker may not open (address, scheme, protocol)
    "circuit_open",  # failing fast after repeated failures, without trying the source
    "stream_deleted",  # the job's stream was deleted before the job finished
    "unknown",  # anything else
]
ERROR_CATEGORIES: tuple[ErrorCategory, ...] = get_args(ErrorCategory)


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Commands ---------------------------------------------------------------------------------


class CaptureSnapshot(Payload):
    job_id: uuid.UUID
    stream_id: uuid.UUID


# Streams one stream.probe command carries: a bulk write of n streams sends ceil(n / 5)
# commands, so the relay and the broker handle one message per five streams, not one each.
# Why no more: a command holds one probe slot while the worker probes its streams one after
# another, unacked all along, and RabbitMQ closes a channel holding a delivery longer than its
# consumer_timeout (30 min by default). With the worker's defaults a stream costs at most
# 3 tries x 20 s (LOOKOUT_CAPTURE_ATTEMPTS, LOOKOUT_FFMPEG_TIMEOUT_SECONDS) + ~3 s of backoff
# = 63 s, so a command 5 x 63 s = 5.3 min; its prefetch window (LOOKOUT_PROBE_PREFETCH 4)
# shares LOOKOUT_PROBE_CONCURRENCY (2) ffprobes, which at most doubles that: 10.5 min when
# every stream of four commands times out three times, a third of the 30 min. Ten per
# command would save the bulk burst only 250 of its 3,000 messages and leave 21 min.
PROBE_BATCH = 5


class ProbeStream(Payload):
    """Probe these streams, one after another; all of them belong to the envelope's tenant."""

    stream_ids: list[uuid.UUID] = Field(min_length=1, max_length=PROBE_BATCH)

    @model_validator(mode="before")
    @classmethod
    def _one_stream_of_old(cls, data: Any) -> Any:
        # Before batches a command named one stream ({"stream_id": ...}); such messages may
        # still wait in the queue while the services are upgraded.
        if isinstance(data, dict) and "stream_id" in data and "stream_ids" not in data:
            rest = {k: v for k, v in data.items() if k != "stream_id"}
            return {**rest, "stream_ids": [data["stream_id"]]}
        return data


# Events -----------------------------------------------------------------------------------


class StreamState(Payload):
    """The countable state of a stream, carried by stream.created and stream.updated."""

    name: str
    kind: str
    status: StreamStatus
    enabled: bool
    tags: list[str] = Field(default_factory=list)
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    fps: float | None = None
    # A hot stream is held open by a worker that keeps its latest frame (hot_frames.py).
    # None: the producer does not say (the worker's probe results); the api always does.
    hot: bool | None = None
    hot_mode: Literal["keyframes", "all"] | None = None


class StreamDeleted(Payload):
    pass


class SnapshotJobState(Payload):
    stream_id: uuid.UUID
    status: JobStatus
    attempts: int = 0
    # A failed job's ErrorCategory, never its detail: rooms fan events out to every role.
    error: str | None = None
    snapshot_id: uuid.UUID | None = None
    # Set on snapshot_job.succeeded: the snapshot's size and how long the job ran.
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


class SnapshotCreated(Payload):
    stream_id: uuid.UUID
    job_id: uuid.UUID
    content_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None


class SnapshotDeleted(Payload):
    stream_id: uuid.UUID


class CountsChanged(Payload):
    """Counts of one scope (a tenant id, or "platform") whose values changed."""

    scope: str
    changes: dict[str, int]


COMMANDS: dict[str, type[Payload]] = {
    "snapshot.capture": CaptureSnapshot,
    "stream.probe": ProbeStream,
}
EVENTS: dict[str, type[Payload]] = {
    "stream.created": StreamState,
    "stream.updated": StreamState,
    "stream.deleted": StreamDeleted,
    "snapshot_job.queued": SnapshotJobState,
    "snapshot_job.started": SnapshotJobState,
    "snapshot_job.succeeded": SnapshotJobState,
    "snapshot_job.failed": SnapshotJobState,
    "snapshot.created": SnapshotCreated,
    "snapshot.deleted": SnapshotDeleted,
    "counts.changed": CountsChanged,
}
PAYLOADS: dict[str, type[Payload]] = {**COMMANDS, **EVENTS}
