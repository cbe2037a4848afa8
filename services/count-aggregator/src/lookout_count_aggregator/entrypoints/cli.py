"""``lookout-count-aggregator [serve | rebuild [--tenant ID] | check [--tenant ID]]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import uvicorn
from lookout_shared.db import create_pool
from lookout_shared.redis import create_redis

from lookout_count_aggregator.entrypoints.http import create_app
from lookout_count_aggregator.keys import CountKeys
from lookout_count_aggregator.rebuild import check, rebuild
from lookout_count_aggregator.settings import AggregatorSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lookout-count-aggregator",
        description="Projects entity events onto count keys in Redis (no command: serve).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="consume events and serve /healthz, /readyz, /metrics")
    for name, text in (
        ("rebuild", "recompute the counts from Postgres and swap them in"),
        ("check", "compare Redis with Postgres; exit 1 and print any difference"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--tenant", type=uuid.UUID, help="only this tenant")
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
    return asyncio.run(_offline(settings, args.command, args.tenant))


async def _offline(settings: AggregatorSettings, command: str, tenant: uuid.UUID | None) -> int:
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    redis = create_redis(settings.redis_url.get_secret_value())
    keys = CountKeys(settings.redis_prefix)
    try:
        if command == "rebuild":
            report = await rebuild(pool, redis, keys, tenant)
            print(
                f"rebuilt {report.tenants} tenant(s) from {report.entities} entities; "
                f"{report.newer_in_redis} newer in Redis; "
                f"removed {len(report.removed_tenants)} tenant(s) gone from Postgres"
            )
            return 0
        drifts = await check(pool, redis, keys, tenant)
        for d in drifts:
            print(f"{d.scope} {d.field}: redis={d.redis} sql={d.sql}")
        if drifts:
            print(f"{len(drifts)} count(s) differ", file=sys.stderr)
            return 1
        print("counts match")
        return 0
    finally:
        await redis.aclose()
        await pool.close()
