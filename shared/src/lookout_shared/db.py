"""Postgres adapter: one asyncpg pool per process, warmed at start-up."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# What adapters take: a plain connection or one borrowed from the pool.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy


class DatabaseUnreachable(ConnectionError):
    """A new connection to Postgres failed at the network level (refused, reset, timed out,
    no route, unknown host). asyncpg raises the bare OSError; this names where it came
    from, so a caller can tell it from a file error. A ConnectionError (an OSError), so
    ``except OSError`` still catches it."""


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"cannot connect to Postgres: {exc!r}") from exc


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A release's reset beyond asyncpg's own rollback of an open transaction: none."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str, min_size: int = 2, max_size: int = 10, *, session_free: bool = False
) -> asyncpg.Pool:
    """Open the pool with ``min_size`` live connections, so the first request pays no connect.

    asyncpg opens ``min_size`` connections inside ``create_pool``; the ``SELECT 1`` proves
    the server answers before the service says it is ready.

    ``session_free``: the caller never leaves session state on a pooled connection (no
    session advisory lock, LISTEN, SET or cursor outside a transaction), so a release skips
    asyncpg's reset query, one more round trip on every release (an open transaction is
    still rolled back, by asyncpg itself).
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connect=_connect,
        command_timeout=30,
        reset=_keep_session if session_free else None,
    )
    await pool.fetchval("SELECT 1")
    return pool


async def close_pool(pool: asyncpg.Pool, grace: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown: ``Pool.close`` waits for every borrowed
    connection, so one never released (a task cancelled at the wrong moment) would block it
    forever; after ``grace`` seconds the remaining connections are terminated."""
    try:
        await asyncio.wait_for(pool.close(), grace)
    except TimeoutError:
        log.warning("Postgres pool did not close within %.0fs; terminating it", grace)
        pool.terminate()
