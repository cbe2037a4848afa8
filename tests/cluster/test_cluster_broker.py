"""A service's connection follows the cluster: when its node dies or is paused it moves to
a live node by itself and its consumers and publisher carry on. Each test records the
longest stall: the time from the fault to the first publish confirmed and delivered."""

from __future__ import annotations

import asyncio
import time
import uuid

from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import Envelope, make_envelope

from tests.cluster.faults import NODES, node_at, queue_leaders, stack

STALLS: dict[str, float] = {}


def probe() -> Envelope:
    stream = uuid.uuid4()
    return make_envelope(
        "stream.probe",
        ProbeStream(stream_ids=[stream]),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=stream,
        entity_version=1,
    )


async def _consuming(broker: Broker) -> asyncio.Queue[Envelope]:
    channel = await broker.connection.channel()
    await topology.declare(channel)
    await (await channel.get_queue(topology.STREAM_PROBE, ensure=False)).purge()
    await channel.close()
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await received.put(env)

    await broker.consume(topology.STREAM_PROBE, handler, prefetch=1)
    first = probe()
    await broker.publish_envelope(first)
    assert await asyncio.wait_for(received.get(), 10) == first
    return received


async def _stall_until_flowing(broker: Broker, received: asyncio.Queue[Envelope]) -> float:
    """Publish (retrying) until one message is confirmed and delivered; the seconds taken."""
    started = time.monotonic()
    message = probe()
    while True:
        assert time.monotonic() - started < 90, "no publish got through for 90 s"
        try:
            await asyncio.wait_for(broker.publish_envelope(message), 5)
            break
        except Exception:
            await asyncio.sleep(0.2)
    while True:
        got = await asyncio.wait_for(received.get(), 90 - (time.monotonic() - started))
        if got == message:
            return time.monotonic() - started


async def test_connection_moves_to_a_live_node_when_its_node_is_killed(broker: Broker) -> None:
    received = await _consuming(broker)
    node = node_at(broker.node)
    try:
        await asyncio.to_thread(stack, "kill-node", str(node))
        stall = await _stall_until_flowing(broker, received)
        assert node_at(broker.node) != node
    finally:
        await asyncio.to_thread(stack, "start-node", str(node))
    STALLS["kill -9 the client's node"] = stall
    print(f"stall after kill -9 of node {node}: {stall:.2f}s")
    assert stall < 5


async def test_connection_leaves_a_paused_node(broker: Broker) -> None:
    received = await _consuming(broker)
    node = node_at(broker.node)
    try:
        await asyncio.to_thread(stack, "pause-node", str(node))
        stall = await _stall_until_flowing(broker, received)
        assert node_at(broker.node) != node
        await asyncio.sleep(max(0.0, 20 - stall))
    finally:
        await asyncio.to_thread(stack, "resume-node", str(node))
    print(f"stall after SIGSTOP of node {node}: {stall:.2f}s")
    assert stall < 30
    # After the pause the cluster heals: every quorum queue has a leader again.
    leaders = queue_leaders(NODES[node % len(NODES)])
    assert topology.STREAM_PROBE in leaders
