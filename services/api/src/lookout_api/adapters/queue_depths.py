"""ports.QueueDepths: how many messages wait in each work and dead-letter queue of RabbitMQ,
read with passive declares (nothing is created; lookout_shared.queues)."""

from __future__ import annotations

import asyncio
import logging

import aio_pika.exceptions
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.queues import queue_depths

from lookout_api.adapters.dead_letters import dead_queues

log = logging.getLogger("lookout_api.handlers.dashboard")  # its lines keep their logger
TIMEOUT_SECONDS = 2.0


class RabbitQueueDepths:
    def __init__(self, broker: Broker | None) -> None:
        self.broker = broker

    async def probe(self) -> tuple[bool, dict[str, int] | None]:
        """Whether the api is connected to RabbitMQ and, if so, the messages ready in every
        work queue and dead-letter queue."""
        broker = self.broker
        if broker is None or not broker.is_connected:
            return False, None
        names = [w.name for w in topology.WORK_QUEUES] + dead_queues()
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                read = await queue_depths(broker.connection, names)
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            log.warning("dashboard: RabbitMQ queue depths unavailable: %r", exc)
            return True, None
        # A queue not declared yet holds nothing.
        return True, {name: depth or 0 for name, depth in read.items()}
