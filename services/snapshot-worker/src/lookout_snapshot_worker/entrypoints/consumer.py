"""RabbitMQ → handler calls. Translation only; the rules live in handlers.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_shared.envelope import Envelope

from lookout_snapshot_worker.handlers import Deps, capture_snapshot, probe_stream


class CommandConsumer:
    """Feeds snapshot.capture and stream.probe to their handlers and tracks what is in flight,
    so shutdown can cancel it (which kills any ffmpeg it started)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def on_capture(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, CaptureSnapshot)  # the queue only carries this type
        await self._tracked(capture_snapshot(command, envelope.tenant_id, self.deps))

    async def on_probe(self, envelope: Envelope) -> None:
        command = envelope.payload()
        assert isinstance(command, ProbeStream)
        await self._tracked(probe_stream(command, envelope.tenant_id, self.deps))

    async def start(self, broker: Broker, prefetch: int) -> None:
        await broker.consume(topology.SNAPSHOT_CAPTURE, self.on_capture, prefetch)
        await broker.consume(topology.STREAM_PROBE, self.on_probe, prefetch)

    async def cancel_in_flight(self, grace: float = 5.0) -> None:
        tasks = [t for t in self._in_flight if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    async def _tracked(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await work
        finally:
            if task is not None:
                self._in_flight.discard(task)
