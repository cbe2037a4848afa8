"""Announces changed counts as ``counts.changed``, debounced per tenant.

Counts live in Redis; an announcement is only a hint for live clients. So an unroutable
publish (no notifier is bound) is dropped quietly, and a broker that is away only delays
the announcement: the batch goes back and is retried on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

from aio_pika.exceptions import DeliveryError
from lookout_shared.contracts import CountsChanged
from lookout_shared.envelope import make_envelope

from lookout_count_aggregator import metrics
from lookout_count_aggregator.domain.debounce import Debouncer
from lookout_count_aggregator.ports import EnvelopePublisher

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class CountsPublisher:
    def __init__(
        self,
        publisher: EnvelopePublisher,
        producer: str,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._producer = producer
        self._debouncer = Debouncer(interval_seconds)
        self._clock = clock
        self._wake = asyncio.Event()
        self._version = 0

    def record(self, scope: str, changes: dict[str, int]) -> None:
        self._debouncer.add(scope, changes)
        self._wake.set()

    async def publish_due(self) -> bool:
        """Publish every batch that is due; False if the broker failed (retry later)."""
        ok = True
        for scope, changes in self._debouncer.due(self._clock()):
            try:
                await self._publish(scope, changes)
            except DeliveryError:
                # Only notifiers bind counts.changed; with none running nobody listens.
                metrics.ANNOUNCEMENTS.labels(outcome="unroutable").inc()
                log.debug("counts.changed unroutable; no notifier is listening")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.ANNOUNCEMENTS.labels(outcome="failed").inc()
                log.warning("counts.changed not published; will retry: %r", exc)
                self._debouncer.restore(scope, changes)
                ok = False
            else:
                metrics.ANNOUNCEMENTS.labels(outcome="published").inc()
        return ok

    async def run(self) -> None:
        """Publish batches as they fall due, until cancelled. A scheduler that runs for the
        life of the process (a failed batch is simply due again in ``RETRY_SECONDS``), not a
        retry loop tenacity would make simpler."""
        while True:
            ok = await self.publish_due()
            wait = self._debouncer.wait_time(self._clock())
            if not ok:
                wait = RETRY_SECONDS
            self._wake.clear()
            if wait is None:
                await self._wake.wait()
            elif wait > 0:
                # A new record may be due earlier than the current wait (another scope).
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _publish(self, scope: str, changes: dict[str, int]) -> None:
        tenant = uuid.UUID(scope)
        # entity_version must rise per tenant; wall-clock ms, never repeating in-process.
        self._version = max(self._version + 1, int(time.time() * 1000))
        envelope = make_envelope(
            "counts.changed",
            CountsChanged(scope=scope, changes=changes),
            producer=self._producer,
            tenant_id=tenant,
            entity_id=tenant,
            entity_version=self._version,
        )
        await self._publisher.publish_envelope(envelope)
