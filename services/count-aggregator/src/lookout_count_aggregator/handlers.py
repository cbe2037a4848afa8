"""One function per event the aggregator consumes."""

from __future__ import annotations

import logging

from lookout_shared.broker import PermanentFailure
from lookout_shared.envelope import Envelope

from lookout_count_aggregator import metrics
from lookout_count_aggregator.domain.contributions import UnusableEvent, contribution_of
from lookout_count_aggregator.ports import ChangeSink, CountStore

log = logging.getLogger(__name__)


async def apply_entity_event(envelope: Envelope, store: CountStore, sink: ChangeSink) -> None:
    """stream.*, snapshot.*, snapshot_job.*: project the entity's new state onto the counts."""
    try:
        contribution = contribution_of(envelope)
    except UnusableEvent as exc:
        metrics.EVENTS.labels(outcome="unusable").inc()
        raise PermanentFailure(str(exc)) from None
    changes = await store.apply(envelope.id, contribution)
    metrics.EVENTS.labels(outcome="changed" if changes else "unchanged").inc()
    if changes:
        sink.record(str(contribution.tenant_id), changes)
