"""The counting rules, shared by the count-aggregator (which keeps the counts in Redis) and
the api (which counts in SQL when Redis cannot answer): what one entity contributes to its
tenant's counts, and the SQL ``GROUP BY`` that applies the same rules to Postgres.

An entity contributes a set of hash fields, each counting 1; the counts of a tenant are the
sum of the contributions of its live entities.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

import asyncpg

Fields = frozenset[str]
# The columns of a stream row that its contribution depends on (see stream_fields).
STREAM_COUNTED = "status, kind, height, tags"


def resolution_class(height: int | None) -> str:
    if height is None:
        return "unknown"
    if height >= 2160:
        return "uhd"
    if height >= 1080:
        return "fhd"
    if height >= 720:
        return "hd"
    return "sd"


def stream_fields(status: str, kind: str, height: int | None, tags: Iterable[str]) -> Fields:
    return _stream_fields(status, kind, resolution_class(height), tuple(tags))


# A fleet's streams share a few combinations of these: the aggregator meets each of them
# thousands of times a second, and building the set is a third of its work on an event.
@functools.lru_cache(maxsize=4096)
def _stream_fields(status: str, kind: str, resolution: str, tags: tuple[str, ...]) -> Fields:
    return frozenset(
        {
            "streams_total",
            f"streams_status:{status}",
            f"streams_kind:{kind}",
            f"streams_resolution:{resolution}",
            *(f"streams_tag:{tag}" for tag in tags),
        }
    )


def snapshot_fields() -> Fields:
    return frozenset({"snapshots_total"})


def job_fields(status: str) -> Fields:
    return frozenset({f"jobs_status:{status}"})


async def grouped_counts(
    pool: asyncpg.Pool, tenants: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, Counter[str]]:
    """Per-tenant counts by SQL ``GROUP BY`` over one snapshot (every tenant, or these).

    Postgres groups the rows by what the counting rules look at; the rules above turn each
    group into fields, so they live in one place.
    """
    where, args = (
        ("WHERE tenant_id = ANY($1::uuid[])", [list(tenants)]) if tenants is not None else ("", [])
    )
    counts: dict[uuid.UUID, Counter[str]] = {}

    def add(tenant: uuid.UUID, fields: Fields, n: int) -> None:
        tally = counts.setdefault(tenant, Counter())
        for field in fields:
            tally[field] += n

    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        for r in await conn.fetch(
            f"""SELECT tenant_id, {STREAM_COUNTED}, count(*) AS n FROM streams {where}
                GROUP BY tenant_id, {STREAM_COUNTED}""",
            *args,
        ):
            add(
                r["tenant_id"],
                stream_fields(r["status"], r["kind"], r["height"], r["tags"]),
                r["n"],
            )
        for r in await conn.fetch(
            f"SELECT tenant_id, count(*) AS n FROM snapshots {where} GROUP BY tenant_id", *args
        ):
            add(r["tenant_id"], snapshot_fields(), r["n"])
        for r in await conn.fetch(
            f"""SELECT tenant_id, status, count(*) AS n FROM snapshot_jobs {where}
                GROUP BY tenant_id, status""",
            *args,
        ):
            add(r["tenant_id"], job_fields(r["status"]), r["n"])
    return counts
