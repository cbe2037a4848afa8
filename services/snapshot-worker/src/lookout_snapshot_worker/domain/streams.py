"""Stream state as the probe changes it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from lookout_shared.contracts import ErrorCategory, StreamStatus

MAX_ERROR_LENGTH = 1000
MAX_FPS = 1000.0  # beyond this a rate is a container's time base, not a frame rate


def parse_rate(text: str | None) -> float | None:
    """ffprobe's ``30000/1001`` (or ``25``) as frames per second; None when unknown."""
    if not text:
        return None
    num, _, den = text.partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    if not 0 < value <= MAX_FPS:
        return None
    return round(value, 3)


@dataclass(frozen=True)
class ProbeResult:
    width: int
    height: int
    codec: str
    fps: float | None = None


@dataclass(frozen=True)
class Stream:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    url: str
    kind: str
    status: StreamStatus
    enabled: bool
    version: int
    tags: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    fps: float | None = None
    last_error: str | None = None  # the detail, for operators
    last_error_category: ErrorCategory | None = None  # what anyone may know of the failure
    updated_at: datetime | None = None

    def probed(self, result: ProbeResult, now: datetime) -> Stream:
        return replace(
            self,
            width=result.width,
            height=result.height,
            codec=result.codec,
            fps=result.fps,
            status=self._status_when("online"),
            last_error=None,
            last_error_category=None,
            version=self.version + 1,
            updated_at=now,
        )

    def failed(self, reason: str, category: ErrorCategory, now: datetime) -> Stream:
        """The source failed (a probe, or a capture that opened the circuit breaker)."""
        return replace(
            self,
            status=self._status_when("error"),
            last_error=reason[:MAX_ERROR_LENGTH],
            last_error_category=category,
            version=self.version + 1,
            updated_at=now,
        )

    def recovered(self, now: datetime) -> Stream:
        """Frames come from the source again (a hot stream reconnected)."""
        return replace(
            self,
            status=self._status_when("online"),
            last_error=None,
            last_error_category=None,
            version=self.version + 1,
            updated_at=now,
        )

    def _status_when(self, status: StreamStatus) -> StreamStatus:
        # A disabled stream stays disabled; the probe still records what it found.
        return status if self.enabled else "disabled"
