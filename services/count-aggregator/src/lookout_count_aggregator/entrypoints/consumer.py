"""The consumer of ``count-aggregator.events``: a message becomes one handler call."""

from __future__ import annotations

from lookout_shared import topology
from lookout_shared.broker import Broker, Consumer
from lookout_shared.envelope import Envelope

from lookout_count_aggregator import handlers
from lookout_count_aggregator.ports import ChangeSink, CountStore


async def consume_entity_events(
    broker: Broker, store: CountStore, sink: ChangeSink, prefetch: int
) -> Consumer:
    async def on_event(envelope: Envelope) -> None:
        await handlers.apply_entity_event(envelope, store, sink)

    return await broker.consume(topology.AGGREGATOR_EVENTS, on_event, prefetch)
