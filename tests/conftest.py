"""Fixtures for every tier.

Servers come from the project's own scripts: ``make test`` starts a fresh test stack
(``LOOKOUT_STACK=test``) and these fixtures read its addresses from ``scripts/stack.sh env``.
A missing server is an error, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import Broker
from lookout_shared.counts_epoch import epoch_key
from lookout_shared.db import create_pool
from lookout_shared.redis import Keys, create_redis
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("outbox", "webhooks", "snapshots", "snapshot_jobs", "streams", "users", "tenants")


def _stack_env() -> dict[str, str]:
    env = {**os.environ, "LOOKOUT_STACK": os.environ.get("LOOKOUT_STACK", "test")}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/stack.sh"), "env"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


STACK = _stack_env()
os.environ.update(STACK)
os.environ.setdefault("LOOKOUT_ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The test stack's ``LOOKOUT_*`` variables (database, Redis, RabbitMQ, folders)."""
    return dict(STACK)


@pytest.fixture(scope="session")
async def pool(stack: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(stack["LOOKOUT_DATABASE_URL"], min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The pool, with every table emptied first."""
    await pool.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    return pool


@pytest.fixture
async def redis(stack: dict[str, str]) -> AsyncIterator[Redis]:
    client = create_redis(stack["LOOKOUT_REDIS_URL"])
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def broker(stack: dict[str, str]) -> AsyncIterator[Broker]:
    broker = Broker(stack["LOOKOUT_AMQP_URL"], producer="tests")
    await broker.connect()
    yield broker
    await broker.close()


async def trust_counts(redis: Redis, prefix: str) -> None:
    """Mark the counts under ``prefix`` as trusted by this Redis process, as a full rebuild
    does (``lookout_shared.counts_epoch``): for tests that write count hashes themselves, or
    whose aggregator must count from what is there instead of rebuilding first."""
    run_id = (await redis.info("server"))["run_id"]
    await redis.hset(epoch_key(Keys(prefix)), mapping={"run_id": run_id, "id": "tests"})


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"t-{uuid.uuid4().hex[:8]}:"
