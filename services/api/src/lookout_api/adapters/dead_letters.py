"""The dead-letter queues: count, inspect, replay to the work queue, purge.

What a dead letter's headers say (why it died, where from) is read by
``lookout_shared.queues``, which also holds their names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.logs import scrub
from lookout_shared.queues import (
    death_reason,
    death_source,
    queue_states,
    replayed_headers,
    replays,
)

GET_TIMEOUT = 5.0


class UnknownQueue(ValueError):
    """The name is neither a work queue nor a dead-letter queue of the topology."""


@dataclass(frozen=True)
class QueueCount:
    queue: str
    messages: int
    consumers: int


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    type: str
    reason: str
    source: str
    replays: int


def dead_queues() -> list[str]:
    return [work.dead for work in topology.WORK_QUEUES] + [f"{topology.NOTIFIER_EVENTS}.dead"]


def resolve(name: str) -> tuple[str, str | None]:
    """``(dead queue, work queue)`` for a work queue's or a dead queue's name. The work queue
    is None for notifier.events: its sources were per-instance queues that no longer exist."""
    base = name.removesuffix(".dead")
    for work in topology.WORK_QUEUES:
        if work.name == base:
            return work.dead, work.name
    if base == topology.NOTIFIER_EVENTS:
        return f"{base}.dead", None
    known = ", ".join(w.name for w in topology.WORK_QUEUES) + f", {topology.NOTIFIER_EVENTS}"
    raise UnknownQueue(f"unknown queue {name!r}; one of: {known}")


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers: Mapping[str, Any] = message.headers or {}
    return DeadLetter(
        message_id=message.message_id or "",
        type=message.type or "",
        reason=scrub(death_reason(headers)),
        source=death_source(headers),
        replays=replays(headers),
    )


class DeadLetters:
    """Operations on the dead-letter queues over the broker's connection."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def counts(self) -> list[QueueCount]:
        """The dead-letter queues that exist, with their messages and consumers."""
        states = await queue_states(self._broker.connection, dead_queues())
        return [
            QueueCount(name, state.messages, state.consumers)
            for name, state in states.items()
            if state is not None
        ]

    async def peek(self, name: str, limit: int) -> list[DeadLetter]:
        """The first ``limit`` dead letters, left in place: they are fetched unacknowledged
        and return to the queue, in order, when the channel closes."""
        dead, _ = resolve(name)
        channel = await self._broker.connection.channel()
        try:
            queue = await channel.declare_queue(dead, passive=True)
            letters = []
            for _ in range(limit):
                message = await queue.get(no_ack=False, fail=False, timeout=GET_TIMEOUT)
                if message is None:
                    break
                letters.append(describe(message))
            return letters
        finally:
            await channel.close()

    async def replay(self, name: str, limit: int | None) -> int:
        """Move dead letters back to their work queue, oldest first; returns how many.

        Each one is published straight to the work queue (the default exchange, so no other
        binding sees it again) on a confirming channel, and only acknowledged, i.e. removed
        from the dead queue, after RabbitMQ confirmed the publish. At most the number
        waiting at the start is moved, so a message that fails again is not looped over.
        """
        dead, work = resolve(name)
        if work is None:
            raise UnknownQueue(
                f"{dead} holds live fan-out events of notifier instances; "
                "there is no queue to replay them to (inspect or purge them)"
            )
        consume = await self._broker.connection.channel()
        publish = await self._broker.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        try:
            queue = await consume.declare_queue(dead, passive=True)
            waiting = queue.declaration_result.message_count or 0
            budget = waiting if limit is None else min(limit, waiting)
            moved = 0
            while moved < budget:
                message = await queue.get(no_ack=False, fail=False, timeout=GET_TIMEOUT)
                if message is None:
                    break
                try:
                    await publish.default_exchange.publish(
                        _replayed(message), routing_key=work, mandatory=True
                    )
                except BaseException:
                    # Not confirmed: the dead letter stays where it was.
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                    raise
                await message.ack()
                moved += 1
            return moved
        finally:
            await _close(publish, consume)

    async def purge(self, name: str) -> int:
        dead, _ = resolve(name)
        channel = await self._broker.connection.channel()
        try:
            queue: AbstractQueue = await channel.declare_queue(dead, passive=True)
            result = await queue.purge()
            return int(result.message_count or 0)
        finally:
            await channel.close()


def _replayed(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = replayed_headers(message.headers or {})
    return aio_pika.Message(
        message.body,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers,
    )


async def _close(*channels: AbstractChannel) -> None:
    await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)
