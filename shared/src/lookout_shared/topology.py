"""RabbitMQ topology: every service declares all of it at start-up (declarations are
idempotent), so whichever starts first, publishes are routable and nothing waits on another
service to create a queue.

Work queues are quorum queues with a delivery limit and a dead-letter twin: a message that
fails too often, or that a consumer rejects as invalid, ends in ``<queue>.dead``.
"""

from __future__ import annotations

import uuid
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


# An instance queue outlives its consumer's connection by this long: a notifier whose broker
# node died or stalled finds its queue, and the events routed to it meanwhile, when it
# reconnects to another node; a queue whose process is gone for good is deleted after it.
INSTANCE_QUEUE_EXPIRES_MS = 120_000


def instance_queue_name() -> str:
    """A fresh name per process: ``notifier.events.<random>``."""
    return f"{NOTIFIER_EVENTS}.{uuid.uuid4().hex[:16]}"


async def declare_instance_queue(
    channel: AbstractChannel, bindings: tuple[str, ...], name: str | None = None
) -> AbstractQueue:
    """One process's own queue on ``lookout.events`` (each notifier instance sees every event).

    A quorum queue, not an exclusive one: an exclusive queue lives on the node its
    connection reached and dies with that connection, so every event routed while the
    process moves to another node (a node killed, paused or partitioned away) would be
    lost to it. This one is replicated like the work queues, survives the move (the robust
    channel declares it again and resumes consuming), and expires
    ``INSTANCE_QUEUE_EXPIRES_MS`` after its process is gone; a graceful stop unbinds it at
    once (release_instance_queue).
    """
    events = await channel.get_exchange(EVENTS)
    queue = await channel.declare_queue(
        name or instance_queue_name(),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-expires": INSTANCE_QUEUE_EXPIRES_MS,
            "x-delivery-limit": DELIVERY_LIMIT,
            **dead_letter_arguments(NOTIFIER_EVENTS),
        },
    )
    for key in bindings:
        await queue.bind(events, routing_key=key)
    return queue


async def release_instance_queue(queue: AbstractQueue, bindings: tuple[str, ...]) -> None:
    """Stop routing events to a leaving process's queue; its expiry then removes it.

    Unbinding, not deleting: RabbitMQ 3.10 fails the channel (and with it the connection)
    of a publisher whose message is routed to a quorum queue while that queue is deleted,
    so a delete would now and then cost the api's relay its connection.
    """
    for key in bindings:
        await queue.unbind(EVENTS, routing_key=key)
