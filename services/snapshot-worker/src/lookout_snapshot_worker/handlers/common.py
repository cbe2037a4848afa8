"""What the capture and probe handlers share: scope and URL checks, retries, the breaker."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import ErrorCategory
from lookout_shared.stream_urls import InvalidStreamUrl, StreamUrl, parse_stream_url
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from lookout_snapshot_worker.domain.breaker import BreakerState
from lookout_snapshot_worker.domain.events import stream_updated
from lookout_snapshot_worker.domain.failures import MediaError, permanent
from lookout_snapshot_worker.ports import Deps

log = logging.getLogger(__name__)
T = TypeVar("T")
CIRCUIT_OPEN: ErrorCategory = "circuit_open"


class StaleState(Exception):
    """The row changed under us; the command is requeued and handled again from scratch."""


async def count_failure(deps: Deps, stream_id: uuid.UUID, reason: str) -> None:
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


async def close_breaker(deps: Deps, stream_id: uuid.UUID, breaker: BreakerState) -> None:
    if breaker.failures or breaker.trips:  # healthy streams cost no extra query
        await deps.breakers.close(stream_id)


def check_scope(owner: uuid.UUID, claimed: uuid.UUID | None, what: str) -> None:
    if claimed is not None and claimed != owner:
        raise PermanentFailure(f"command's tenant does not own the {what}")


def parse_url(url: str, media_dir: str | None) -> StreamUrl:
    # The database is not a trust boundary we skip: check the URL again before ffmpeg.
    try:
        return parse_stream_url(url, media_dir)
    except InvalidStreamUrl as exc:
        raise permanent(f"invalid stream url: {exc}") from None


class Tries:
    def __init__(self) -> None:
        self.count = 0

    @property
    def extra(self) -> int:
        """Attempts beyond the one ``Job.start`` already counted."""
        return max(self.count - 1, 0)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, MediaError) and exc.transient


async def with_retries(action: Callable[[], Awaitable[T]], deps: Deps, tries: Tries) -> T:
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
