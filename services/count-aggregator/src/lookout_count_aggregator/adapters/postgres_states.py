"""Reads the countable entities from Postgres (read only), as the counts see them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Sequence

import asyncpg
from lookout_shared.contracts import SNAPSHOT_ROW_VERSION
from lookout_shared.count_rules import (
    STREAM_COUNTED,
    grouped_counts,
    job_fields,
    snapshot_fields,
    stream_fields,
)

from lookout_count_aggregator.domain.contributions import (
    SNAPSHOT,
    SNAPSHOT_JOB,
    STREAM,
    Contribution,
)

COUNTED_TABLES = ("streams", "snapshots", "snapshot_jobs")
STATE_QUERIES = (
    (f"SELECT id, version, {STREAM_COUNTED} FROM streams WHERE tenant_id = $1", STREAM),
    ("SELECT id FROM snapshots WHERE tenant_id = $1", SNAPSHOT),
    ("SELECT id, version, status FROM snapshot_jobs WHERE tenant_id = $1", SNAPSHOT_JOB),
)


class PostgresStates:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def tenant_ids(self) -> list[uuid.UUID]:
        return [r["id"] for r in await self._pool.fetch("SELECT id FROM tenants ORDER BY id")]

    async def sample_tenants(self, n: int) -> list[uuid.UUID]:
        rows = await self._pool.fetch("SELECT id FROM tenants ORDER BY random() LIMIT $1", n)
        return [r["id"] for r in rows]

    async def count_rows(self, tenant_id: uuid.UUID | None = None) -> int:
        where, args = ("WHERE tenant_id = $1", [tenant_id]) if tenant_id else ("", [])
        total = 0
        for table in COUNTED_TABLES:
            total += await self._pool.fetchval(f"SELECT count(*) FROM {table} {where}", *args)
        return total

    async def grouped_counts(
        self, tenants: Sequence[uuid.UUID] | None
    ) -> dict[uuid.UUID, Counter[str]]:
        return await grouped_counts(self._pool, tenants)

    async def tenant_states(
        self, tenant_id: uuid.UUID, chunk: int
    ) -> AsyncGenerator[list[Contribution], None]:
        """Through a cursor, in one repeatable-read transaction: every chunk belongs to the
        same snapshot."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            for query, entity_type in STATE_QUERIES:
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
