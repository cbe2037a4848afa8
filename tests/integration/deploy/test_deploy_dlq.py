"""``lookout-api dlq`` and ``outbox status`` against the test stack's RabbitMQ and Postgres.

Most calls go through the subcommands' own parser and ``run`` in a worker thread (it runs
its own event loop, as from the console script); a few run the real console script in a
subprocess, to prove the wiring in ``lookout-api``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from lookout_api.adapters.outbox_status import outbox_status
from lookout_api.entrypoints import cli as ops
from lookout_api.settings import ApiSettings
from lookout_shared import outbox, topology
from lookout_shared.broker import Broker, PermanentFailure
from lookout_shared.contracts import CaptureSnapshot
from lookout_shared.envelope import Envelope, make_envelope

CLI = str(Path(sys.executable).parent / "lookout-api")
CAPTURE = topology.SNAPSHOT_CAPTURE
CAPTURE_DEAD = f"{CAPTURE}.dead"


def console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def _inline(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    parser = argparse.ArgumentParser(prog="lookout-api")
    ops.add_subcommands(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ops.run(ApiSettings(), parsed)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_inline, args)


async def cli_json(*args: str) -> Any:
    done = await cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def capture_command() -> Envelope:
    job, stream = uuid.uuid4(), uuid.uuid4()
    return make_envelope(
        CAPTURE,
        CaptureSnapshot(job_id=job, stream_id=stream),
        producer="tests",
        tenant_id=uuid.uuid4(),
        entity_id=job,
        entity_version=1,
    )


@pytest.fixture
async def raw(stack: dict[str, str]) -> AsyncIterator[AbstractChannel]:
    """A plain channel, with the capture queue and its dead twin emptied first. Not a robust
    one: a robust channel caches queue declarations, and their message counts with them."""
    connection: AbstractConnection = await aio_pika.connect(stack["LOOKOUT_AMQP_URL"])
    channel = await connection.channel()
    for name in (CAPTURE, CAPTURE_DEAD):
        await (await channel.declare_queue(name, passive=True)).purge()
    yield channel
    await connection.close()


async def depth(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count or 0


async def wait_for_depth(channel: AbstractChannel, name: str, expected: int) -> None:
    for _ in range(200):
        if await depth(channel, name) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never held {expected} message(s)")


async def test_deploy_replayed_capture_is_processed(
    broker: Broker, raw: AbstractChannel, stack: dict[str, str]
) -> None:
    command = capture_command()
    handled: list[Envelope] = []
    done = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        # The first delivery hits a bug and is dead-lettered by the consumer; once the
        # operator has fixed it, the replayed command goes through.
        if not handled and not done.is_set() and envelope.id == command.id:
            done.set()
            raise PermanentFailure("stream row missing (job 1234) password=hunter2")
        handled.append(envelope)

    consumer = Broker(stack["LOOKOUT_AMQP_URL"], producer="tests-consumer")
    await consumer.connect()
    try:
        await consumer.consume(CAPTURE, handler, prefetch=1)
        await broker.publish_envelope(command)
        await wait_for_depth(raw, CAPTURE_DEAD, 1)

        listed = console("dlq", "list", "--json")  # the real console script, once
        assert listed.returncode == 0, listed.stderr
        counts = {row["queue"]: row["messages"] for row in json.loads(listed.stdout)}
        assert counts[CAPTURE_DEAD] == 1
        assert set(counts) == {
            "snapshot.capture.dead",
            "stream.probe.dead",
            "count-aggregator.events.dead",
            "notifier.events.dead",
            "notifier.webhooks.dead",
        }

        [letter] = await cli_json("dlq", "list", CAPTURE)
        assert letter["message_id"] == str(command.id)
        assert letter["type"] == CAPTURE
        assert letter["source"] == CAPTURE
        assert "stream row missing" in letter["reason"]
        assert "hunter2" not in json.dumps(letter)  # reasons are scrubbed like logs
        table = await cli("dlq", "list", CAPTURE)
        assert str(command.id) in table.stdout
        assert str(command.data["stream_id"]) not in table.stdout  # bodies are never printed
        # Looking does not take: the dead letter is still there (once the console's channel,
        # which held it while reading, has closed and the broker counts it again).
        await wait_for_depth(raw, CAPTURE_DEAD, 1)

        assert await cli_json("dlq", "replay", CAPTURE) == {"replayed": 1}
        for _ in range(200):
            if handled:
                break
            await asyncio.sleep(0.05)
        assert [e.id for e in handled] == [command.id]
        assert handled[0].data == command.data
        assert await depth(raw, CAPTURE_DEAD) == 0
    finally:
        await consumer.close()


async def test_deploy_replay_of_a_broker_dead_letter(raw: AbstractChannel) -> None:
    """A message RabbitMQ itself dead-lettered (delivery limit) carries x-death: the CLI
    shows the broker's reason and replays it to the work queue without the old headers."""
    command = capture_command()
    await raw.default_exchange.publish(
        aio_pika.Message(
            command.to_bytes(),
            message_id=str(command.id),
            type=CAPTURE,
            headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        ),
        routing_key=CAPTURE,
    )
    queue = await raw.declare_queue(CAPTURE, passive=True)
    for _ in range(topology.DELIVERY_LIMIT + 1):
        message = await queue.get(no_ack=False, fail=False, timeout=5)
        if message is None:
            break
        await message.nack(requeue=True)
    await wait_for_depth(raw, CAPTURE_DEAD, 1)

    [letter] = await cli_json("dlq", "list", CAPTURE_DEAD)
    assert letter["reason"] == "rabbitmq: delivery_limit"
    assert letter["source"] == CAPTURE

    assert await cli_json("dlq", "replay", CAPTURE, "--limit", "5") == {"replayed": 1}
    replayed = await queue.get(no_ack=True, timeout=5)
    assert replayed.message_id == str(command.id)
    assert replayed.body == command.to_bytes()
    headers = replayed.headers or {}
    assert "x-death" not in headers
    assert headers["x-lookout-replayed"] == 1
    assert headers["traceparent"] == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert await depth(raw, CAPTURE_DEAD) == 0


async def test_deploy_replay_limit_and_purge(broker: Broker, raw: AbstractChannel) -> None:
    commands = [capture_command() for _ in range(3)]
    for command in commands:
        await raw.default_exchange.publish(
            aio_pika.Message(
                command.to_bytes(),
                message_id=str(command.id),
                type=CAPTURE,
                headers={"x-lookout-reason": "test", "x-lookout-queue": CAPTURE},
            ),
            routing_key=CAPTURE_DEAD,
        )
    await wait_for_depth(raw, CAPTURE_DEAD, 3)

    assert await cli_json("dlq", "replay", CAPTURE, "--limit", "1") == {"replayed": 1}
    assert await depth(raw, CAPTURE_DEAD) == 2
    moved = await (await raw.declare_queue(CAPTURE, passive=True)).get(no_ack=True, timeout=5)
    assert moved.message_id == str(commands[0].id)  # oldest first

    refused = await cli("dlq", "purge", CAPTURE)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert await depth(raw, CAPTURE_DEAD) == 2
    assert await cli_json("dlq", "purge", CAPTURE, "--yes") == {"purged": 2}
    assert await depth(raw, CAPTURE_DEAD) == 0

    unknown = await cli("dlq", "replay", "nope")
    assert unknown.returncode == 2
    assert "unknown queue" in unknown.stderr
    notifier = await cli("dlq", "replay", "notifier.events")
    assert notifier.returncode == 2


async def test_deploy_outbox_status(db: asyncpg.Pool) -> None:
    # The rows stay uncommitted, so no outbox relay running elsewhere in the session can
    # publish them from under the test; the query sees them through the same connection.
    old, failing, sent = capture_command(), capture_command(), capture_command()
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("DELETE FROM outbox")
            empty = await outbox_status(conn)
            assert (empty.backlog, empty.oldest_age_seconds, empty.failing) == (0, None, 0)
            await outbox.enqueue(conn, old, failing, sent)
            await conn.execute(
                "UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE message_id = $1",
                old.id,
            )
            await conn.execute(
                "UPDATE outbox SET attempts = 3, last_error = 'ConnectionError()' WHERE message_id = $1",
                failing.id,
            )
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE message_id = $1", sent.id
            )
            status = await outbox_status(conn)
        finally:
            await transaction.rollback()
    assert status.backlog == 2
    assert status.oldest_age_seconds is not None and 89 <= status.oldest_age_seconds < 150
    assert status.failing == 1
    assert status.max_attempts == 3
    assert status.failing_types == {CAPTURE: 1}


async def test_deploy_outbox_status_commands() -> None:
    data = await cli_json("outbox", "status")
    assert set(data) == {
        "backlog",
        "oldest_age_seconds",
        "failing",
        "max_attempts",
        "failing_types",
    }
    assert data["backlog"] >= 0
    text = console("outbox", "status")  # the real console script
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("unpublished rows:")
    assert "rows with errors:" in text.stdout
