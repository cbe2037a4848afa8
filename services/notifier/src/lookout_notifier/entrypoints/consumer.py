"""The broker side: this instance's own queue bound to every event (a quorum queue that
expires once the instance is gone: lookout_shared.topology.declare_instance_queue)."""

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
