"""RabbitMQ → handler calls. Translation only; the rules live in handlers/.

Each work queue gets a channel of its own with its own prefetch. On shutdown the shared
:class:`~lookout_shared.broker.Consumer` handles stop deliveries without closing their
channels, so in-flight commands still ack when they finish (graceful drain on SIGTERM),
and what cannot finish in time is handed back to the queue.

Every command first takes a slot of its tenant (domain/tenant_slots.py): a command whose tenant
holds its share of the worker for longer than the wait goes to the back of its queue. A
capture gives its slot back as soon as ffmpeg is done: storing the frame and committing run
outside the count, within the prefetch window, while the next command takes the slot. A
probe command (up to PROBE_BATCH streams of one tenant) holds its slot while its streams are
probed one after another, so a tenant's batch counts as one command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from lookout_shared import topology
from lookout_shared.broker import Broker, Consumer
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_shared.envelope import Envelope

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.domain.tenant_slots import TenantSlots
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.ports import Deps

log = logging.getLogger(__name__)


class CommandConsumer:
    """Feeds snapshot.capture and stream.probe to their handlers, fairly between tenants."""

    def __init__(
        self, deps: Deps, captures: TenantSlots, probes: TenantSlots, tenant_wait: float
    ) -> None:
        self.deps = deps
        self.captures = captures
        self.probes = probes
        self.tenant_wait = tenant_wait
        self._broker: Broker | None = None
        self._consumers: list[Consumer] = []

    async def on_capture(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, CaptureSnapshot)  # the queue only carries this type
        await self._fairly(
            self.captures, topology.SNAPSHOT_CAPTURE, envelope,
            lambda release: capture_snapshot(
                command, envelope.tenant_id, self.deps, media_done=release
            ),
        )  # fmt: skip

    async def on_probe(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, ProbeStream)
        await self._fairly(
            self.probes, topology.STREAM_PROBE, envelope,
            lambda release: probe_stream(command, envelope.tenant_id, self.deps),
        )  # fmt: skip

    async def _fairly(
        self,
        slots: TenantSlots,
        queue: str,
        envelope: Envelope,
        handle: Callable[[Callable[[], None]], Awaitable[None]],
    ) -> None:
        """Run ``handle`` in one of the tenant's slots. It may give the slot back early
        (the release it is passed): the command then runs on, out of the count."""
        tenant = envelope.tenant_id
        if not await slots.acquire(tenant, self.tenant_wait):
            # Returning acks the delivery, so the copy must be confirmed first.
            assert self._broker is not None
            await self._broker.publish_envelope(envelope)
            metrics.COMMANDS_DEFERRED.labels(queue).inc()
            log.info(
                "command %s back to the end of %s: its tenant holds its share", envelope.id, queue
            )
            return
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release(tenant)

        try:
            await handle(release)
        finally:
            release()

    async def start(self, broker: Broker, capture_prefetch: int, probe_prefetch: int) -> None:
        self._broker = broker
        self._consumers = [
            await broker.consume(topology.SNAPSHOT_CAPTURE, self.on_capture, capture_prefetch),
            await broker.consume(topology.STREAM_PROBE, self.on_probe, probe_prefetch),
        ]

    async def stop(self, grace: float) -> None:
        """Stop taking commands, let in-flight ones finish for ``grace`` seconds, then
        cancel the rest (killing their ffmpeg) and requeue their commands."""
        await asyncio.gather(*(c.stop(grace) for c in self._consumers))
        self._consumers.clear()
