"""``lookout-api``'s operator commands: create-superuser and seed-demo call the same
handlers as the REST API; dlq and outbox inspect the queues and the outbox (argument
parsing, the connections they need, and what they print: a table, or JSON with ``--json``).

Nothing printed carries a secret: connection URLs are never shown, and dead-letter
reasons pass through the same scrubber as the logs. Message bodies are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika.exceptions
import asyncpg
from lookout_shared.broker import Broker
from lookout_shared.tokens import Principal

from lookout_api import bootstrap, handlers
from lookout_api.adapters.dead_letters import DeadLetters, QueueCount, UnknownQueue
from lookout_api.adapters.outbox_status import outbox_status
from lookout_api.bootstrap import Deps
from lookout_api.domain import listing
from lookout_api.domain.errors import Conflict, DomainError
from lookout_api.settings import ApiSettings

DEMO_TENANT = "Demo"
DEMO_STREAM = "Demo camera"


async def create_superuser(settings: ApiSettings, email: str, password: str) -> int:
    async def work(deps: Deps) -> str:
        try:
            await handlers.create_user(deps, None, email, password, "superuser", None)
        except Conflict:
            return f"superuser {email} exists"
        return f"created superuser {email}"

    return await _run(settings, work)


async def seed_demo(settings: ApiSettings, video_url: str) -> int:
    """The demo tenant, its admin (LOOKOUT_DEMO_EMAIL / LOOKOUT_DEMO_PASSWORD) and a stream
    backed by a local test video. Running it again changes nothing."""
    email = os.environ.get("LOOKOUT_DEMO_EMAIL", "admin@example.com")
    password = os.environ.get("LOOKOUT_DEMO_PASSWORD", "lookout-demo-password")

    async def work(deps: Deps) -> str:
        async with deps.db.connect() as session:
            tenant = await session.tenant_by_name(DEMO_TENANT)
        if tenant is None:
            tenant = await handlers.create_tenant(deps, None, DEMO_TENANT)
        async with deps.db.connect() as session:
            admin = await session.user_for_login(email)
        if admin is None:
            admin = await handlers.create_user(deps, None, email, password, "admin", tenant["id"])
        principal = Principal(admin["id"], tenant["id"], "admin", expires_at=_far_future())
        found = await handlers.list_streams(deps, principal, _by_name(DEMO_STREAM))
        stream = next((s for s in found.rows if s["name"] == DEMO_STREAM), None)
        if stream is None:
            stream = await handlers.create_stream(
                deps,
                principal,
                name=DEMO_STREAM,
                url=video_url,
                tags=["demo"],
                enabled=True,
            )
        return f"tenant={tenant['id']} stream={stream['id']} email={email}"

    return await _run(settings, work)


async def _run(settings: ApiSettings, work: Callable[[Deps], Awaitable[str]]) -> int:
    """Run one command with Postgres and Redis (no broker: writes go to the outbox);
    a domain error is printed and exits 2."""
    deps = await bootstrap.build(settings, with_broker=False)
    try:
        print(await work(deps))
        return 0
    except DomainError as exc:
        print(f"error: {exc.detail}")
        return 2
    finally:
        await bootstrap.close(deps)


def _by_name(name: str) -> listing.StreamQuery:
    return listing.StreamQuery(
        filter=listing.StreamFilter(None, q=name), sort=listing.Sort("name", False), limit=500
    )


def _far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)


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
