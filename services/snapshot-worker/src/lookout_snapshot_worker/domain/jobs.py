"""Snapshot job state: it only moves forward, queued → running → succeeded | failed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from lookout_shared.contracts import ErrorCategory

JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: frozenset[JobStatus] = frozenset({"succeeded", "failed"})
MAX_ERROR_LENGTH = 1000


class JobStateError(Exception):
    """A transition the state machine forbids (e.g. starting a finished job)."""


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID
    status: JobStatus
    attempts: int
    version: int
    error: str | None = None  # the detail, for operators
    error_category: ErrorCategory | None = None  # what anyone may know of the failure
    snapshot_id: uuid.UUID | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def start(self, now: datetime) -> Job:
        """queued or running (a redelivery after a crash) → running, one more attempt."""
        self._require_unfinished("start")
        return replace(
            self,
            status="running",
            attempts=self.attempts + 1,
            version=self.version + 1,
            started_at=now,
        )

    def succeed(self, snapshot_id: uuid.UUID, now: datetime, extra_attempts: int = 0) -> Job:
        self._require_running("succeed")
        return replace(
            self,
            status="succeeded",
            snapshot_id=snapshot_id,
            error=None,
            error_category=None,
            attempts=self.attempts + extra_attempts,
            version=self.version + 1,
            finished_at=now,
        )

    def fail(
        self, reason: str, category: ErrorCategory, now: datetime, extra_attempts: int = 0
    ) -> Job:
        self._require_unfinished("fail")
        return replace(
            self,
            status="failed",
            error=reason[:MAX_ERROR_LENGTH],
            error_category=category,
            attempts=self.attempts + extra_attempts,
            version=self.version + 1,
            finished_at=now,
        )

    def _require_unfinished(self, action: str) -> None:
        if self.finished:
            raise JobStateError(f"cannot {action} a {self.status} job")

    def _require_running(self, action: str) -> None:
        if self.status != "running":
            raise JobStateError(f"cannot {action} a {self.status} job")


@dataclass(frozen=True)
class Snapshot:
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID
    job_id: uuid.UUID
    storage_key: str
    content_type: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
