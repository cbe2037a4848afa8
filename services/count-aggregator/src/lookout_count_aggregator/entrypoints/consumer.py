"""The consumer of ``count-aggregator.events``: a batch of messages becomes one handler call
(one Redis round trip, one span, one ack; see ``lookout_shared.batch_consumer``)."""

from __future__ import annotations

from lookout_shared import topology
from lookout_shared.batch_consumer import BatchConsumer, consume_batches
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope

from lookout_count_aggregator.handlers.entity_events import apply_entity_events
from lookout_count_aggregator.ports import ChangeSink, CountStore
from lookout_count_aggregator.settings import AggregatorSettings


async def consume_entity_events(
    broker: Broker, store: CountStore, sink: ChangeSink, settings: AggregatorSettings
) -> BatchConsumer:
    async def on_events(envelopes: list[Envelope]) -> list[Exception | None]:
        return await apply_entity_events(envelopes, store, sink)

    return await consume_batches(
        broker,
        topology.AGGREGATOR_EVENTS,
        on_events,
        batch_size=settings.aggregator_batch,
        max_wait=settings.aggregator_batch_wait_ms / 1000,
        prefetch=settings.aggregator_prefetch,
    )
