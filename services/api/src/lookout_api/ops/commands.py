"""The ``dlq`` and ``outbox`` subcommands of ``lookout-api``: argument parsing, the
connections they need, and what they print (a table, or JSON with ``--json``).

Nothing printed carries a secret: connection URLs are never shown, and dead-letter
reasons pass through the same scrubber as the logs. Message bodies are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

import aio_pika.exceptions
import asyncpg
from lookout_shared.broker import Broker

from lookout_api.ops.dead_letters import DeadLetters, QueueCount, UnknownQueue
from lookout_api.ops.outbox_status import outbox_status
from lookout_api.settings import ApiSettings

COMMANDS = ("dlq", "outbox")


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="inspect, replay or purge the dead-letter queues")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="counts per dead-letter queue, or one queue's first")
    listing.add_argument("queue", nargs="?", help="a work queue (e.g. snapshot.capture)")
    listing.add_argument("--limit", type=_positive, default=20, help="messages to show (20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    replay = dlq_sub.add_parser("replay", help="move dead letters back to their work queue")
    replay.add_argument("queue")
    replay.add_argument("--limit", type=_positive, default=None, help="at most this many")
    replay.add_argument("--json", action="store_true", help="print JSON")
    purge = dlq_sub.add_parser("purge", help="delete every message of a dead-letter queue")
    purge.add_argument("queue")
    purge.add_argument("--yes", action="store_true", help="confirm: the messages are lost")
    purge.add_argument("--json", action="store_true", help="print JSON")

    outbox = sub.add_parser("outbox", help="the transactional outbox")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    status = outbox_sub.add_parser("status", help="backlog, oldest unpublished age, failures")
    status.add_argument("--json", action="store_true", help="print JSON")


def run(settings: ApiSettings, args: argparse.Namespace) -> int:
    if args.command == "outbox":
        return asyncio.run(_outbox_status(settings, args.json))
    if args.dlq_command == "purge" and not args.yes:
        print("error: purge deletes the messages for good; add --yes", file=sys.stderr)
        return 2
    return asyncio.run(_dlq(settings, args))


async def _dlq(settings: ApiSettings, args: argparse.Namespace) -> int:
    broker = Broker(settings.amqp_url.get_secret_value(), producer="lookout-api-ops")
    try:
        await broker.connect()
    except (ConnectionError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        print(f"error: RabbitMQ unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1
    letters = DeadLetters(broker)
    try:
        if args.dlq_command == "list" and args.queue is None:
            counts = await letters.counts()
            _emit(args.json, [dataclasses.asdict(c) for c in counts], _counts_table(counts))
        elif args.dlq_command == "list":
            peeked = await letters.peek(args.queue, args.limit)
            rows = [dataclasses.asdict(p) for p in peeked]
            _emit(args.json, rows, _letters_table(rows))
        elif args.dlq_command == "replay":
            moved = await letters.replay(args.queue, args.limit)
            _emit(args.json, {"replayed": moved}, f"replayed {moved} message(s) to {args.queue}")
        else:
            purged = await letters.purge(args.queue)
            _emit(args.json, {"purged": purged}, f"purged {purged} message(s)")
        return 0
    except UnknownQueue as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await broker.close()


async def _outbox_status(settings: ApiSettings, as_json: bool) -> int:
    try:
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: Postgres unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1
    try:
        status = await outbox_status(conn)
    finally:
        await conn.close()
    age = status.oldest_age_seconds
    text = "\n".join(
        [
            f"unpublished rows:      {status.backlog}",
            f"oldest unpublished:    {'-' if age is None else f'{age:.1f}s ago'}",
            f"rows with errors:      {status.failing} (max attempts {status.max_attempts})",
            *(f"  {kind}: {n}" for kind, n in status.failing_types.items()),
        ]
    )
    _emit(as_json, dataclasses.asdict(status), text)
    return 0


def _emit(as_json: bool, data: object, text: str) -> None:
    print(json.dumps(data, indent=2) if as_json else text)


def _counts_table(counts: list[QueueCount]) -> str:
    return _table(["queue", "messages", "consumers"], [dataclasses.asdict(c) for c in counts])


def _letters_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "no messages"
    return _table(["message_id", "type", "source", "replays", "reason"], rows)


def _table(columns: list[str], rows: list[dict[str, object]]) -> str:
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [columns, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
