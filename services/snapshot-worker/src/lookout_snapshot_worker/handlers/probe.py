"""stream.probe: probe each pending stream once, however many commands ask for it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import ProbeStream

from lookout_snapshot_worker.domain.attempts import media_attempt
from lookout_snapshot_worker.domain.events import stream_updated
from lookout_snapshot_worker.domain.failures import MediaError
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream
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
from lookout_snapshot_worker.ports import Deps

log = logging.getLogger(__name__)
# Guarded writes of a probe's result, each on the stream as reloaded after a conflict.
SAVE_TRIES = 3


async def probe_stream(command: ProbeStream, tenant_id: uuid.UUID | None, deps: Deps) -> None:
    """Probe the command's streams one after another, in the one probe slot it holds.

    Each stream is handled on its own (:func:`probe_one`): a MediaError is that stream's
    result. Any other error on one stream does not keep the rest from being probed; once
    they are done the first error is raised, so the command is delivered again, and the
    streams probed meanwhile are no longer pending: a redelivery retries only what failed.
    An error a redelivery may cure goes ahead of a PermanentFailure (a stream of another
    tenant), which would dead-letter the command at once.
    """
    errors: list[Exception] = []
    for stream_id in command.stream_ids:
        try:
            await probe_one(stream_id, tenant_id, deps)
        except Exception as exc:  # CancelledError (shutdown) is no Exception: it stops all
            log.warning("probe of stream %s failed; the command goes on", stream_id, exc_info=exc)
            errors.append(exc)
    if errors:
        raise next((e for e in errors if not isinstance(e, PermanentFailure)), errors[0])


async def probe_one(stream_id: uuid.UUID, tenant_id: uuid.UUID | None, deps: Deps) -> None:
    """Probe a pending stream once, however many commands ask for it.

    Every change that asks for a probe (a new stream, a new URL, enabled again) sets the
    stream ``pending``, so a command that finds it otherwise was answered by an earlier
    probe. A command for a stream whose URL this process is already probing joins that
    probe. A change made during the probe that keeps the URL (a new name, new tags) keeps
    its result; a new URL drops it, since that change queued a probe of its own.
    """
    stream = await deps.streams.load(stream_id)
    if stream is None:
        log.info("stream %s is gone; nothing to probe", stream_id)
        return
    check_scope(stream.tenant_id, tenant_id, "stream")
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
        url = parse_url(stream.url, deps.media_dir)
        await deps.guard.check(url)
        with media_attempt(stream.id, tries.count):
            return await deps.prober.probe(url)

    tries = Tries()
    try:
        result = await with_retries(probe_once, deps, tries)
    except MediaError as exc:
        log.warning("probe of stream %s failed: %s", stream.id, exc.reason)
        reason, category = exc.reason, exc.category
        await _save_probe(deps, stream, lambda s: s.failed(reason, category, deps.clock()))
        await count_failure(deps, stream.id, reason)
        return
    await _save_probe(deps, stream, lambda s: s.probed(result, deps.clock()))
    await close_breaker(deps, stream.id, breaker)


async def _save_probe(deps: Deps, probed: Stream, outcome: Callable[[Stream], Stream]) -> None:
    """Write ``outcome`` onto the stream as it is now, as long as its URL is the one probed.

    A compare-and-set loop, not a retry with backoff: each turn reloads the row and may end
    early (deleted, new URL), which tenacity would only wrap, not simplify."""
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
