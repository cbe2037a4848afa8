"""The broker side: this instance's own exclusive, auto-delete queue bound to every event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lookout_shared.broker import Broker, Consumer
from lookout_shared.envelope import Envelope

ALL_EVENTS = ("#",)


async def start_consumer(
    broker: Broker, on_event: Callable[[Envelope], Awaitable[None]], prefetch: int
) -> Consumer:
    """Consume every event (validated, invalid ones dead-lettered)."""
    return await broker.consume_events(ALL_EVENTS, on_event, prefetch)
