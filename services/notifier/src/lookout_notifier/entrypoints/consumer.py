"""The broker side: this instance's own exclusive, auto-delete queue bound to every event."""

from __future__ import annotations

from lookout_shared.broker import Broker

from lookout_notifier.bootstrap import Notifier

ALL_EVENTS = ("#",)


async def start_consumer(broker: Broker, notifier: Notifier, prefetch: int) -> str:
    """Consume every event (validated, invalid ones dead-lettered); returns the queue name."""
    return await broker.consume_events(ALL_EVENTS, notifier.on_event, prefetch)
