"""What the services read of RabbitMQ's queues from outside a consumer: how deep they are
(a passive declare) and why a dead letter died (its headers).

A dead letter arrives in one of two ways, and its headers say which: a consumer rejected it
(``Broker.dead_letter`` writes :data:`REASON_HEADER` and :data:`SOURCE_HEADER`), or RabbitMQ
moved it after the work queue's delivery limit (``x-death``, with the broker's reason).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika.abc
import aio_pika.exceptions

DECLARE_TIMEOUT = 5.0

REASON_HEADER = "x-lookout-reason"  # why the consumer rejected it
SOURCE_HEADER = "x-lookout-queue"  # the queue it was consumed from
REPLAYED_HEADER = "x-lookout-replayed"  # how often it was moved back to its work queue
# The bookkeeping of a failed delivery; a replayed message starts afresh without it.
DEATH_HEADERS = (
    REASON_HEADER,
    SOURCE_HEADER,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
)


@dataclass(frozen=True)
class QueueState:
    messages: int  # ready (not the unacked ones)
    consumers: int


async def queue_states(
    connection: aio_pika.abc.AbstractConnection, names: Iterable[str]
) -> dict[str, QueueState | None]:
    """Each queue's state, None when it is missing or may not be read. Passive declares:
    nothing is created. They go over one short-lived channel with ``robust=False`` (a robust
    channel answers a passive declare of a queue it knows from its cache, without asking
    the broker); a refused declare (NOT_FOUND) closes the channel, so a fresh one is opened
    for the next queue. A lost connection or a declare slower than ``DECLARE_TIMEOUT``
    raises."""
    states: dict[str, QueueState | None] = {}
    channel: aio_pika.abc.AbstractChannel | None = None
    try:
        for name in names:
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            try:
                async with asyncio.timeout(DECLARE_TIMEOUT):
                    queue = await _declare_passive(channel, name)
            except aio_pika.exceptions.ChannelClosed:
                states[name] = None
                continue
            result = queue.declaration_result
            states[name] = QueueState(result.message_count or 0, result.consumer_count or 0)
    finally:
        if channel is not None and not channel.is_closed:
            await channel.close()
    return states


async def queue_depths(
    connection: aio_pika.abc.AbstractConnection, names: Iterable[str]
) -> dict[str, int | None]:
    """The messages ready in each queue, None when it is missing or unreadable (see
    :func:`queue_states`)."""
    states = await queue_states(connection, names)
    return {name: None if s is None else s.messages for name, s in states.items()}


async def _declare_passive(
    channel: aio_pika.abc.AbstractChannel, name: str
) -> aio_pika.abc.AbstractQueue:
    if isinstance(channel, aio_pika.abc.AbstractRobustChannel):
        # Not from the robust channel's cache: the broker's answer now.
        return await channel.declare_queue(name, passive=True, robust=False)
    return await channel.declare_queue(name, passive=True)


def death_reason(headers: Mapping[str, Any]) -> str:
    """Why a dead letter died: the consumer's reason, else RabbitMQ's (``rabbitmq: …``)."""
    if REASON_HEADER in headers:
        return _text(headers[REASON_HEADER])
    broker_reason = _death_field(headers, "reason")
    if broker_reason:
        return f"rabbitmq: {broker_reason}"
    return "unknown"


def death_source(headers: Mapping[str, Any]) -> str:
    """The queue a dead letter was consumed from ('' when its headers do not say)."""
    return _text(headers.get(SOURCE_HEADER)) or _death_field(headers, "queue")


def replays(headers: Mapping[str, Any]) -> int:
    """How often the dead letter was replayed to its work queue."""
    value = headers.get(REPLAYED_HEADER)
    return value if isinstance(value, int) else 0


def replayed_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers a dead letter goes back to its work queue with: its death bookkeeping
    dropped, its replay count raised."""
    kept = {k: v for k, v in headers.items() if k not in DEATH_HEADERS}
    kept[REPLAYED_HEADER] = replays(headers) + 1
    return kept


def _death_field(headers: Mapping[str, Any], field: str) -> str:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return _text(deaths[0].get(field))
    return ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
