"""The broker side: this instance's own exclusive, auto-delete queue bound to every event."""

from __future__ import annotations

from lookout_shared.broker import Broker, Consumer

from lookout_notifier.bootstrap import Notifier

ALL_EVENTS = ("#",)


async def start_consumer(broker: Broker, notifier: Notifier, prefetch: int) -> Consumer:
    """Consume every event (validated, invalid ones dead-lettered)."""
    return await broker.consume_events(ALL_EVENTS, notifier.on_event, prefetch)
