"""RabbitMQ → handler calls. Translation only; the rules live in handlers.py.

Each work queue gets a channel of its own with its own prefetch. On shutdown the shared
:class:`~lookout_shared.broker.Consumer` handles stop deliveries without closing their
channels, so in-flight commands still ack when they finish (graceful drain on SIGTERM),
and what cannot finish in time is handed back to the queue.
"""

from __future__ import annotations

import asyncio

from lookout_shared import topology
from lookout_shared.broker import Broker, Consumer
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_shared.envelope import Envelope

from lookout_snapshot_worker.handlers import Deps, capture_snapshot, probe_stream


class CommandConsumer:
    """Feeds snapshot.capture and stream.probe to their handlers."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._consumers: list[Consumer] = []

    async def on_capture(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, CaptureSnapshot)  # the queue only carries this type
        await capture_snapshot(command, envelope.tenant_id, self.deps)

    async def on_probe(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, ProbeStream)
        await probe_stream(command, envelope.tenant_id, self.deps)

    async def start(self, broker: Broker, capture_prefetch: int, probe_prefetch: int) -> None:
        self._consumers = [
            await broker.consume(topology.SNAPSHOT_CAPTURE, self.on_capture, capture_prefetch),
            await broker.consume(topology.STREAM_PROBE, self.on_probe, probe_prefetch),
        ]

    async def stop(self, grace: float) -> None:
        """Stop taking commands, let in-flight ones finish for ``grace`` seconds, then
        cancel the rest (killing their ffmpeg) and requeue their commands."""
        await asyncio.gather(*(c.stop(grace) for c in self._consumers))
        self._consumers.clear()
