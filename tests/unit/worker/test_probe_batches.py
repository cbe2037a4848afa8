"""A stream.probe command of several streams, against in-memory twins of every port."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import make_envelope
from lookout_shared.stream_urls import StreamUrl
from lookout_snapshot_worker.adapters.memory import ScriptedMedia
from lookout_snapshot_worker.domain.breaker import BreakerPolicy
from lookout_snapshot_worker.domain.failures import permanent
from lookout_snapshot_worker.domain.streams import ProbeResult
from lookout_snapshot_worker.domain.tenant_slots import TenantSlots
from lookout_snapshot_worker.entrypoints.consumer import CommandConsumer
from lookout_snapshot_worker.handlers.probe import probe_stream

from .test_handlers import add_stream, world

RESULT = ProbeResult(640, 360, "h264")


class GatedProber(ScriptedMedia):
    """Holds every probe until released, and records how many ran at once."""

    def __init__(self, *outcomes: ProbeResult) -> None:
        super().__init__(*outcomes)
        self.gate, self.started = asyncio.Event(), asyncio.Event()
        self.running = self.most = 0

    async def probe(self, url: StreamUrl) -> ProbeResult:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.set()
        try:
            await self.gate.wait()
            return await super().probe(url)
        finally:
            self.running -= 1


async def test_a_batch_probes_its_streams_one_after_another_in_one_tenant_slot(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    prober = GatedProber(RESULT)
    w.deps = replace(w.deps, prober=prober)
    streams = [add_stream(w) for _ in range(3)]
    consumer = CommandConsumer(
        w.deps, captures=TenantSlots(1, 1), probes=TenantSlots(2, 1), tenant_wait=5
    )
    command = ProbeStream(stream_ids=[s.id for s in streams])
    envelope = make_envelope(
        "stream.probe", command, producer="test", tenant_id=w.tenant,
        entity_id=streams[0].id, entity_version=1,
    )  # fmt: skip
    task = asyncio.create_task(consumer.on_probe(envelope))
    await asyncio.wait_for(prober.started.wait(), 5)
    assert consumer.probes.running(w.tenant) == 1  # the whole batch holds one slot
    prober.gate.set()
    await asyncio.wait_for(task, 5)
    assert prober.most == 1
    assert [c.url for c in prober.calls] == [s.url for s in streams]
    assert {w.streams.streams[s.id].status for s in streams} == {"online"}
    assert consumer.probes.running(w.tenant) == 0


async def test_a_media_error_or_an_open_circuit_is_one_streams_result_and_the_rest_go_on(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, permanent("Server returned 404 Not Found"), RESULT, attempts=1)
    w.deps = replace(w.deps, breaker=BreakerPolicy(threshold=1))
    missing, fine = add_stream(w), add_stream(w)
    await probe_stream(ProbeStream(stream_ids=[missing.id, fine.id]), w.tenant, w.deps)
    assert w.streams.streams[missing.id].last_error_category == "circuit_open"  # opened
    assert w.streams.streams[fine.id].status == "online"

    # The breaker is the stream's: with it open, the stream fails fast; the other is probed.
    again, fresh = replace(w.streams.streams[missing.id], status="pending"), add_stream(w)
    w.streams.streams[missing.id] = again
    calls = len(w.media.calls)
    await probe_stream(ProbeStream(stream_ids=[missing.id, fresh.id]), w.tenant, w.deps)
    assert len(w.media.calls) == calls + 1  # fresh's probe only
    assert w.streams.streams[missing.id].last_error_category == "circuit_open"
    assert w.streams.streams[fresh.id].status == "online"


async def test_an_error_a_redelivery_may_cure_is_raised_ahead_of_a_foreign_stream(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, RESULT)
    foreign = replace(add_stream(w), tenant_id=uuid.uuid4())
    w.streams.streams[foreign.id] = foreign
    flaky, fine = add_stream(w), add_stream(w)

    class BrokenOnce(ScriptedMedia):
        async def probe(self, url: StreamUrl) -> ProbeResult:
            if not self.calls:
                self.calls.append(url)
                raise ConnectionResetError("Postgres went away")
            return await super().probe(url)

    deps = replace(w.deps, prober=BrokenOnce(RESULT))
    command = ProbeStream(stream_ids=[foreign.id, flaky.id, fine.id])
    with pytest.raises(ConnectionResetError):
        await probe_stream(command, w.tenant, deps)
    assert [w.streams.streams[s.id].status for s in (foreign, flaky, fine)] == [
        "pending", "pending", "online",
    ]  # fmt: skip
    # Delivered again: the flaky stream is probed; the foreign one then dead-letters it.
    with pytest.raises(PermanentFailure, match="does not own the stream"):
        await probe_stream(command, w.tenant, deps)
    assert [w.streams.streams[s.id].status for s in (foreign, flaky, fine)] == [
        "pending", "online", "online",
    ]  # fmt: skip
