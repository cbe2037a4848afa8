"""``lookout-count-aggregator [serve | rebuild [--tenant ID] | check [--tenant ID]]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import asyncpg
import uvicorn
from lookout_shared.cli_args import parser as command_parser
from lookout_shared.count_keys import CountKeys
from lookout_shared.db import close_pool, create_pool
from lookout_shared.redis import create_redis
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from lookout_count_aggregator.bootstrap import check_drift, rebuilder
from lookout_count_aggregator.entrypoints.http import create_app
from lookout_count_aggregator.handlers.rebuild import RebuildBusy
from lookout_count_aggregator.settings import AggregatorSettings

EXIT_DRIFT, EXIT_BUSY = 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser(
        "lookout-count-aggregator",
        "Projects entity events onto count keys in Redis (no command: serve).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="consume events and serve /healthz, /readyz, /metrics")
    rebuild = commands.add_parser(
        "rebuild", help="recompute the counts from Postgres and swap them in (events may flow)"
    )
    rebuild.add_argument("--tenant", type=uuid.UUID, help="only this tenant")
    rebuild.add_argument("--quiet", action="store_true", help="no progress bar")
    check = commands.add_parser(
        "check", help="compare Redis with Postgres; exit 1 and print any difference"
    )
    check.add_argument("--tenant", type=uuid.UUID, help="only this tenant")
    check.add_argument(
        "--settle",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="look again after this long and report only lasting differences (default 1)",
    )
    return parser.parse_args(argv)


def run(settings: AggregatorSettings, args: argparse.Namespace) -> int:
    if args.command in (None, "serve"):
        uvicorn.run(
            create_app(settings),
            host=settings.bind_host,
            port=settings.aggregator_port,
            log_config=None,
        )
        return 0
    return asyncio.run(_offline(settings, args))


class _Bar:
    """The rebuild's progress on the terminal (stderr), as a rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("rebuilding counts", total=None)

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    async def advance(self, entities: int) -> None:
        self._progress.advance(self._task, entities)


async def _offline(settings: AggregatorSettings, args: argparse.Namespace) -> int:
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    redis = create_redis(settings.redis_url.get_secret_value())
    keys = CountKeys(settings.redis_prefix)
    try:
        if args.command == "rebuild":
            return await _rebuild(settings, args, pool, redis, keys)
        tenants = [args.tenant] if args.tenant else None
        drifts = await check_drift(pool, redis, keys, tenants, args.settle)
        for d in drifts:
            print(f"{d.scope} {d.field}: redis={d.redis} sql={d.sql}")
        if drifts:
            print(f"{len(drifts)} count(s) differ", file=sys.stderr)
            return EXIT_DRIFT
        print("counts match")
        return 0
    finally:
        await redis.aclose()
        await close_pool(pool)


async def _rebuild(
    settings: AggregatorSettings,
    args: argparse.Namespace,
    pool: asyncpg.Pool,
    redis: Redis,
    keys: CountKeys,
) -> int:
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeRemainingColumn(), console=Console(stderr=True), disable=args.quiet
    ) as progress:
        rebuild = rebuilder(pool, redis, keys, settings.rebuild_chunk, _Bar(progress))
        try:
            report = await rebuild.run(args.tenant)
        except RebuildBusy as exc:
            print(exc, file=sys.stderr)
            return EXIT_BUSY
    print(
        f"rebuilt {report.tenants} tenant(s) from {report.entities} entities; "
        f"{report.newer_in_redis} newer in Redis; "
        f"removed {len(report.removed_tenants)} tenant(s) gone from Postgres"
    )
    if report.epoch is not None:
        print(f"counts trusted under epoch {report.epoch}")
    return 0
