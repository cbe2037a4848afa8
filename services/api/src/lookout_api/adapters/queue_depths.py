"""ports.QueueDepths: how many messages wait in each work and dead-letter queue of RabbitMQ,
read with passive declares (nothing is created) on one channel."""

from __future__ import annotations

import asyncio
import logging

import aio_pika.exceptions
from lookout_shared import topology
from lookout_shared.broker import Broker

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
                channel = await broker.connection.channel()
                try:
                    depths = {}
                    for name in names:
                        queue = await channel.declare_queue(name, passive=True)
                        depths[name] = queue.declaration_result.message_count or 0
                finally:
                    await channel.close()
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            log.warning("dashboard: RabbitMQ queue depths unavailable: %r", exc)
            return True, None
        return True, depths
