"""Settling a batch of deliveries on the aiormq channels they came from
(:mod:`lookout_shared.batch_consumer`): dead letters with why, hand-backs for a retry, and
one ``multiple`` ack per channel for the rest. A delivery of a channel that has closed is
left alone: RabbitMQ requeued it when the channel closed, and its tag means nothing on
another channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import cast

from aiormq.abc import DeliveredMessage

from lookout_shared.broker import Broker, PermanentFailure
from lookout_shared.envelope import InvalidMessage

log = logging.getLogger("lookout_shared.batch_consumer")
RETRY_PAUSE = 0.5  # before handing messages back: no hot loop while a dependency is down


async def settle(
    broker: Broker,
    label: str,
    queue: str,
    batch: list[DeliveredMessage],
    failures: dict[int, Exception],
) -> Counter[str]:
    """Dead-letter, hand back, then ack the rest of the batch with one ack per channel."""
    outcomes: Counter[str] = Counter()
    poison = [i for i, e in failures.items() if isinstance(e, InvalidMessage | PermanentFailure)]
    retry = [i for i in failures if i not in poison]
    for i in retry:
        log.warning(
            "handler failed; requeueing",
            extra={"queue": label, "error": repr(failures[i])},
        )
    parked = await asyncio.gather(
        *(broker.dead_letter(label, batch[i], str(failures[i]), source=queue) for i in poison),
        return_exceptions=True,
    )
    for i, result in zip(poison, parked, strict=True):
        if isinstance(result, BaseException):
            log.warning("could not dead-letter (%r); requeueing", result)
            retry.append(i)
        else:
            outcomes["dead_letter"] += 1
    if retry:
        await asyncio.sleep(RETRY_PAUSE)
        await hand_back([batch[i] for i in retry])
        outcomes["requeue"] += len(retry)
    done = [m for i, m in enumerate(batch) if i not in retry]
    outcomes["ack"] += len(done) - outcomes["dead_letter"]
    await ack_up_to(done)
    return outcomes


def _tag(message: DeliveredMessage) -> int:
    return cast(int, message.delivery_tag)  # always set on a consumer's delivery


async def ack_up_to(messages: Sequence[DeliveredMessage]) -> None:
    """Ack ``messages`` (in delivery order) with one ``multiple`` ack per channel: on the
    last of each channel that is still open (a closed one's were requeued by RabbitMQ)."""
    acked: set[int] = set()
    for message in reversed(messages):
        channel = message.channel
        if id(channel) in acked or channel.is_closed:
            continue
        acked.add(id(channel))
        try:  # bounded: a channel whose connection just died may never drain it
            await asyncio.wait_for(channel.basic_ack(_tag(message), multiple=True), 5.0)
        except Exception as exc:  # the channel is closing: RabbitMQ requeues what it held
            log.info("could not ack a batch (%r); RabbitMQ will redeliver it", exc)


async def hand_back(messages: Sequence[DeliveredMessage]) -> None:
    """Requeue each message on its own channel; bounded, as a channel whose connection is
    gone would never answer (RabbitMQ requeues them anyway then)."""
    for message in messages:
        if message.channel.is_closed:
            continue
        with contextlib.suppress(Exception):
            await asyncio.wait_for(message.channel.basic_nack(_tag(message), requeue=True), 1.0)
