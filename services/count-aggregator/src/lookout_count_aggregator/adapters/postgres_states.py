"""Reads every countable entity from Postgres (read only), as the counts see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from lookout_count_aggregator.domain.contributions import (
    SNAPSHOT,
    SNAPSHOT_JOB,
    STREAM,
    Contribution,
    job_fields,
    snapshot_fields,
    stream_fields,
)

# Snapshots have no version column; 0 lets any later event about them apply.
SNAPSHOT_VERSION = 0


@dataclass(frozen=True)
class SqlStates:
    tenants: list[uuid.UUID]
    states: list[Contribution]


async def load_states(pool: asyncpg.Pool, tenant_id: uuid.UUID | None = None) -> SqlStates:
    """One consistent snapshot of every tenant and countable entity (or of one tenant)."""
    where, args = ("WHERE tenant_id = $1", [tenant_id]) if tenant_id else ("", [])
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        tenant_where = "WHERE id = $1" if tenant_id else ""
        tenants = [
            r["id"] for r in await conn.fetch(f"SELECT id FROM tenants {tenant_where}", *args)
        ]
        streams = await conn.fetch(
            f"SELECT id, tenant_id, version, status, kind, height, tags FROM streams {where}",
            *args,
        )
        snapshots = await conn.fetch(f"SELECT id, tenant_id FROM snapshots {where}", *args)
        jobs = await conn.fetch(
            f"SELECT id, tenant_id, version, status FROM snapshot_jobs {where}",
            *args,
        )
    states = [
        Contribution(
            STREAM,
            r["id"],
            r["tenant_id"],
            r["version"],
            stream_fields(r["status"], r["kind"], r["height"], r["tags"]),
        )
        for r in streams
    ]
    states += [
        Contribution(SNAPSHOT, r["id"], r["tenant_id"], SNAPSHOT_VERSION, snapshot_fields())
        for r in snapshots
    ]
    states += [
        Contribution(SNAPSHOT_JOB, r["id"], r["tenant_id"], r["version"], job_fields(r["status"]))
        for r in jobs
    ]
    return SqlStates(tenants, states)
