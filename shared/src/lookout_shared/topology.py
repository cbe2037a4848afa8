"""RabbitMQ topology: every service declares all of it at start-up (declarations are
idempotent), so whichever starts first, publishes are routable and nothing waits on another
service to create a queue.

Work queues are quorum queues with a delivery limit and a dead-letter twin: a message that
fails too often, or that a consumer rejects as invalid, ends in ``<queue>.dead``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue
from pamqp.common import FieldTable

COMMANDS = "lookout.commands"
EVENTS = "lookout.events"
DEAD = "lookout.dead"

SNAPSHOT_CAPTURE = "snapshot.capture"
STREAM_PROBE = "stream.probe"
AGGREGATOR_EVENTS = "count-aggregator.events"
NOTIFIER_EVENTS = "notifier.events"  # per-instance queues share this dead-letter name
# Webhook deliveries: one shared queue, so each event is delivered once across notifiers.
NOTIFIER_WEBHOOKS = "notifier.webhooks"

DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class WorkQueue:
    name: str
    exchange: str
    bindings: tuple[str, ...]

    @property
    def dead(self) -> str:
        return f"{self.name}.dead"


WORK_QUEUES = (
    WorkQueue(SNAPSHOT_CAPTURE, COMMANDS, (SNAPSHOT_CAPTURE,)),
    WorkQueue(STREAM_PROBE, COMMANDS, (STREAM_PROBE,)),
    WorkQueue(AGGREGATOR_EVENTS, EVENTS, ("stream.*", "snapshot.*", "snapshot_job.*")),
    WorkQueue(NOTIFIER_WEBHOOKS, EVENTS, ("stream.*", "snapshot.*", "snapshot_job.*")),
)


def dead_letter_arguments(queue: str) -> FieldTable:
    return {"x-dead-letter-exchange": DEAD, "x-dead-letter-routing-key": queue}


async def declare(channel: AbstractChannel) -> None:
    commands = await channel.declare_exchange(COMMANDS, aio_pika.ExchangeType.DIRECT, durable=True)
    events = await channel.declare_exchange(EVENTS, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_exchange(DEAD, aio_pika.ExchangeType.DIRECT, durable=True)
    exchanges = {COMMANDS: commands, EVENTS: events}
    for work in WORK_QUEUES:
        queue = await channel.declare_queue(
            work.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                **dead_letter_arguments(work.name),
            },
        )
        for key in work.bindings:
            await queue.bind(exchanges[work.exchange], routing_key=key)
    for name in [w.dead for w in WORK_QUEUES] + [f"{NOTIFIER_EVENTS}.dead"]:
        dead_queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead, routing_key=name.removesuffix(".dead"))


async def declare_instance_queue(
    channel: AbstractChannel, bindings: tuple[str, ...]
) -> AbstractQueue:
    """A server-named, exclusive, auto-delete queue on ``lookout.events`` (one per notifier)."""
    events = await channel.get_exchange(EVENTS)
    queue = await channel.declare_queue(
        "", exclusive=True, auto_delete=True, arguments=dead_letter_arguments(NOTIFIER_EVENTS)
    )
    for key in bindings:
        await queue.bind(events, routing_key=key)
    return queue
