"""Waits out a Redis outage instead of failing the events that meet it.

An event whose apply fails because Redis is unreachable is not a poison message. Handing it
back with requeue counts as a delivery on the quorum queue, and after ``x-delivery-limit``
of them RabbitMQ dead-letters it: a Redis restart of a few seconds would park every event
in flight. So an apply that meets an unreachable Redis keeps its message, unacked, and
waits: the first one to fail retries its own apply with capped exponential backoff and
jitter (tenacity: a well-kept implementation of exactly this schedule) while every other
apply waits behind it, so Redis is probed by one call at a time, never in a tight loop. When
that apply succeeds, the others go on. The channel's prefetch bounds the messages held
meanwhile; the rest wait in the queue, and none counts a delivery.

RabbitMQ's ``consumer_timeout`` (30 minutes by default) bounds how long a message may stay
unacked: an outage longer than that closes the channel and its messages are redelivered
(a delivery each), as with any consumer that stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from lookout_count_aggregator import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis is unreachable, restarting (LOADING is a ConnectionError) or too slow: not the event's
# fault. Anything else (a script error) fails the event as before.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisOutage:
    def __init__(
        self, max_backoff_seconds: float, on_recovered: Callable[[], None] | None = None
    ) -> None:
        self._up = asyncio.Event()
        self._up.set()
        self._max_backoff = max_backoff_seconds
        self._on_recovered = on_recovered

    @property
    def down(self) -> bool:
        return not self._up.is_set()

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()``'s result, however long Redis takes to come back."""
        while True:
            await self._up.wait()
            try:
                return await op()
            except UNREACHABLE as exc:
                if self.down:
                    continue  # another call is waiting Redis out: wait behind it
                return await self._wait_out(op, exc)

    async def _wait_out(self, op: Callable[[], Awaitable[T]], first: BaseException) -> T:
        log.warning("Redis unreachable (%r); holding events until it answers", first)
        self._up.clear()
        metrics.WAITING_FOR_REDIS.set(1)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(UNREACHABLE),
            wait=wait_exponential_jitter(
                multiplier=0.1, max=self._max_backoff, jitter=self._max_backoff / 5
            ),
            before_sleep=_log_attempt,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    result = await op()
        finally:
            self._up.set()
            metrics.WAITING_FOR_REDIS.set(0)
        log.warning("Redis answers again; applying events")
        if self._on_recovered is not None:
            self._on_recovered()
        return result


def _log_attempt(state: RetryCallState) -> None:
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("Redis still unreachable after %d attempts; next in %.1fs", state.attempt_number, wait)
