"""Consumers resume by themselves after RabbitMQ restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from aio_pika.exceptions import DeliveryError
from lookout_shared import topology
from lookout_shared.broker import Broker
from lookout_shared.contracts import ProbeStream
from lookout_shared.envelope import Envelope, make_envelope

ROOT = Path(__file__).resolve().parents[3]


def rabbit(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], env=os.environ, check=True)


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


async def test_consumer_resumes_after_a_broker_restart(broker: Broker) -> None:
    channel = await broker.connection.channel()
    await (await channel.get_queue(topology.STREAM_PROBE, ensure=False)).purge()
    await channel.close()
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await received.put(env)

    await broker.consume(topology.STREAM_PROBE, handler, prefetch=1)
    first = probe()
    await broker.publish_envelope(first)
    assert await asyncio.wait_for(received.get(), 10) == first

    await asyncio.to_thread(rabbit, "stop-rabbitmq")
    await asyncio.to_thread(rabbit, "start-rabbitmq")

    # The robust connection reconnects on its own schedule; publish once it is back.
    second = probe()
    for _ in range(120):
        try:
            await broker.publish_envelope(second)
            break
        except Exception:
            await asyncio.sleep(0.5)
    assert await asyncio.wait_for(received.get(), 30) == second


def rabbitmqctl(*args: str) -> str:
    ctl = ["bash", str(ROOT / "scripts/stack.sh"), "ctl", "1", "rabbitmqctl", *args]
    return subprocess.run(ctl, env=os.environ, check=True, capture_output=True, text=True).stdout


def close_connections_named(name: str) -> int:
    """Close, from the broker's side, every connection whose client named it ``name``."""
    out = rabbitmqctl("list_connections", "-q", "--no-table-headers", "pid", "client_properties")
    pids = [line.split()[0] for line in out.splitlines() if f'"{name}"' in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test: connection lost")
    return len(pids)


async def send_event(broker: Broker, key: str, env: Envelope) -> None:
    await broker.publish(
        topology.EVENTS, key, env.to_bytes(), message_id=str(env.id), message_type=env.type
    )


async def test_events_routed_while_an_instance_reconnects_reach_it_afterwards(
    broker: Broker,
) -> None:
    # A notifier's own queue must outlive its connection: when its node dies the process
    # reconnects elsewhere, and what was published meanwhile must still reach it.
    name = f"instance-{uuid.uuid4().hex[:8]}"
    key = f"tests.{name}"  # bound by this instance's queue alone
    instance = Broker(os.environ["LOOKOUT_AMQP_URL"], producer=name)
    instance.reconnect_interval = 2.0  # a gap long enough to publish into
    await instance.connect()
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await received.put(env)

    try:
        consumer = await instance.consume_events((key,), handler, prefetch=10)
        before = probe()
        await send_event(broker, key, before)
        assert await asyncio.wait_for(received.get(), 10) == before

        assert await asyncio.to_thread(close_connections_named, name) == 1
        during = [probe() for _ in range(5)]
        for env in during:  # while the instance has no connection
            await send_event(broker, key, env)
        got = [await asyncio.wait_for(received.get(), 30) for _ in during]
        assert sorted(e.id.hex for e in got) == sorted(e.id.hex for e in during)
        await consumer.stop(grace=1)
        # A graceful stop unbinds the queue: nothing more is routed to a process that left.
        # Unroutable, unless another test's queue is still bound to "#".
        with contextlib.suppress(DeliveryError):
            await send_event(broker, key, probe())
        channel = await broker.connection.channel()
        left = await channel.declare_queue(consumer.queue.name, passive=True)
        assert left.declaration_result.message_count == 0
        await channel.close()
    finally:
        await instance.close()


async def test_a_first_connection_keeps_trying_with_doubling_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A loopback port nobody listens on: every attempt is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waiting = Broker(f"amqp://guest:guest@127.0.0.1:{port}/", "tests")
    # It never gives up by itself.
    with caplog.at_level(logging.WARNING, "lookout_shared.broker"), pytest.raises(TimeoutError):
        await asyncio.wait_for(waiting.connect_with_retry(max_delay=1.0), 4.0)
    pauses = [
        match.group(1)
        for record in caplog.records
        if (match := re.search(r"unreachable .*; retrying in ([\d.]+)s", record.getMessage()))
    ]
    assert pauses[:3] == ["0.5", "1.0", "1.0"]
    assert not waiting.is_connected
