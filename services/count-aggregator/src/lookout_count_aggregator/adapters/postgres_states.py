"""Reads the countable entities from Postgres (read only), as the counts see them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
from lookout_shared.contracts import SNAPSHOT_ROW_VERSION
from lookout_shared.count_rules import STREAM_COUNTED, job_fields, snapshot_fields, stream_fields
from lookout_shared.count_rules import grouped_counts as grouped_counts
from lookout_shared.db import Conn

from lookout_count_aggregator.domain.contributions import (
    SNAPSHOT,
    SNAPSHOT_JOB,
    STREAM,
    Contribution,
)

COUNTED_TABLES = ("streams", "snapshots", "snapshot_jobs")


async def tenant_ids(pool: asyncpg.Pool) -> list[uuid.UUID]:
    return [r["id"] for r in await pool.fetch("SELECT id FROM tenants ORDER BY id")]


async def tenant_exists(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> bool:
    return bool(
        await pool.fetchval("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", tenant_id)
    )


async def count_rows(pool: asyncpg.Pool, tenant_id: uuid.UUID | None = None) -> int:
    """How many entities a rebuild reads (the progress bar's total)."""
    where, args = ("WHERE tenant_id = $1", [tenant_id]) if tenant_id else ("", [])
    total = 0
    for table in COUNTED_TABLES:
        total += await pool.fetchval(f"SELECT count(*) FROM {table} {where}", *args)
    return total


async def tenant_states(
    conn: Conn, tenant_id: uuid.UUID, chunk: int
) -> AsyncIterator[list[Contribution]]:
    """The tenant's entities in chunks, read through a cursor: call it inside one
    repeatable-read transaction so every chunk belongs to the same snapshot."""
    queries = (
        (f"SELECT id, version, {STREAM_COUNTED} FROM streams WHERE tenant_id = $1", STREAM),
        ("SELECT id FROM snapshots WHERE tenant_id = $1", SNAPSHOT),
        ("SELECT id, version, status FROM snapshot_jobs WHERE tenant_id = $1", SNAPSHOT_JOB),
    )
    for query, entity_type in queries:
        batch: list[Contribution] = []
        async for r in conn.cursor(query, tenant_id, prefetch=chunk):
            batch.append(_contribution(entity_type, tenant_id, r))
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch


def _contribution(entity_type: str, tenant_id: uuid.UUID, r: asyncpg.Record) -> Contribution:
    if entity_type == STREAM:
        fields = stream_fields(r["status"], r["kind"], r["height"], r["tags"])
        return Contribution(STREAM, r["id"], tenant_id, r["version"], fields)
    if entity_type == SNAPSHOT:
        return Contribution(SNAPSHOT, r["id"], tenant_id, SNAPSHOT_ROW_VERSION, snapshot_fields())
    return Contribution(SNAPSHOT_JOB, r["id"], tenant_id, r["version"], job_fields(r["status"]))
