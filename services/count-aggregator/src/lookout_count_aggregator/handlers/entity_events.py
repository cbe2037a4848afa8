"""The handler of the events the aggregator consumes, a batch at a time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from lookout_shared.broker import PermanentFailure
from lookout_shared.envelope import Envelope

from lookout_count_aggregator import metrics
from lookout_count_aggregator.domain.contributions import (
    Contribution,
    UnusableEvent,
    contribution_of,
)
from lookout_count_aggregator.ports import Applied, ChangeSink, CountStore

log = logging.getLogger(__name__)


async def apply_entity_events(
    envelopes: Sequence[Envelope], store: CountStore, sink: ChangeSink
) -> list[Exception | None]:
    """stream.*, snapshot.*, snapshot_job.*: project the entities' new states onto the counts,
    in order, with one store call. Per envelope: None when done, :class:`PermanentFailure`
    when no retry can count it, another exception when it should be retried."""
    results: list[Exception | None] = [None] * len(envelopes)
    usable: list[tuple[int, uuid.UUID, Contribution]] = []
    for i, envelope in enumerate(envelopes):
        try:
            usable.append((i, envelope.id, contribution_of(envelope)))
        except UnusableEvent as exc:
            results[i] = PermanentFailure(str(exc))
    if len(usable) < len(envelopes):
        metrics.EVENTS.labels(outcome="unusable").inc(len(envelopes) - len(usable))
    events = [(event_id, c) for _, event_id, c in usable]
    try:
        applied = await store.apply_many(events)
        failed: dict[int, Exception] = {}
    except Exception as exc:
        if len(events) == 1:
            results[usable[0][0]] = exc
            return results
        # Not an outage (the store waits those out), e.g. a script error: find the event(s)
        # at fault so the others are not retried with them. Events applied before the error
        # are duplicates now: applying them again changes nothing, so their counts are
        # announced by the next change of the tenant rather than by this batch.
        log.warning("batch apply failed (%r); applying its events one at a time", exc)
        applied, failed = await _apply_one_by_one(store, events)
    for j, error in failed.items():
        results[usable[j][0]] = error
    moved = sum(applied.moved)
    metrics.EVENTS.labels(outcome="changed").inc(moved)
    metrics.EVENTS.labels(outcome="unchanged").inc(len(usable) - len(failed) - moved)
    for tenant, counts in applied.counts.items():
        sink.record(str(tenant), counts)
    return results


async def _apply_one_by_one(
    store: CountStore, events: list[tuple[uuid.UUID, Contribution]]
) -> tuple[Applied, dict[int, Exception]]:
    """Each event in its own store call: (what the good ones did, the failures by index)."""
    merged, failed = Applied(), {}
    for j, event in enumerate(events):
        try:
            one = await store.apply_many([event])
        except Exception as exc:
            failed[j] = exc
            continue
        merged.outcomes += one.outcomes
        merged.moved += one.moved
        for tenant, counts in one.counts.items():
            merged.counts.setdefault(tenant, {}).update(counts)
    return merged, failed


async def apply_entity_event(envelope: Envelope, store: CountStore, sink: ChangeSink) -> None:
    """One event: as :func:`apply_entity_events`, raising what it would return."""
    [result] = await apply_entity_events([envelope], store, sink)
    if result is not None:
        raise result
