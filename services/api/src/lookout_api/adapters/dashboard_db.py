"""The dashboard's one SQL statement: failures, the outbox backlog, the tenant's quotas and,
when Redis cannot answer, the counts."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
from lookout_shared.count_rules import job_fields, snapshot_fields, stream_fields
from lookout_shared.db import Conn

# $1 tenant (NULL: every tenant), $2 whether to count in SQL, $3 how many failures to list,
# $4 the default stream limit. Scalar sub-selects keep it one statement and one round trip;
# the counting scans only run when $2 is true (a one-time filter). The counts come back
# grouped by what the counting rules look at (lookout_shared.count_rules applies them).
SUMMARY_SQL = """
WITH stream_groups AS (
    SELECT status, kind, height, tags, count(*) AS n FROM streams
    WHERE $2 AND ($1::uuid IS NULL OR tenant_id = $1)
    GROUP BY status, kind, height, tags
),
job_groups AS (
    SELECT status, count(*) AS n FROM snapshot_jobs
    WHERE $2 AND ($1::uuid IS NULL OR tenant_id = $1)
    GROUP BY status
),
tenant AS (
    SELECT max_streams, snapshot_requests_per_minute, max_hot_streams,
           coalesce(max_streams, $4) AS stream_limit
    FROM tenants WHERE id = $1
)
SELECT
    (SELECT coalesce(jsonb_agg(g), '[]') FROM stream_groups AS g) AS stream_groups,
    (SELECT coalesce(jsonb_agg(j), '[]') FROM job_groups AS j) AS job_groups,
    (SELECT count(*) FROM snapshots
        WHERE $2 AND ($1::uuid IS NULL OR tenant_id = $1)) AS snapshot_count,
    (SELECT coalesce(jsonb_agg(j), '[]') FROM (
        SELECT id, tenant_id, stream_id, error, error_category, attempts, finished_at
        FROM snapshot_jobs
        WHERE status = 'failed' AND ($1::uuid IS NULL OR tenant_id = $1)
        ORDER BY created_at DESC LIMIT $3) AS j) AS failed_jobs,
    (SELECT coalesce(jsonb_agg(s), '[]') FROM (
        SELECT id, tenant_id, name, last_error, last_error_category, updated_at FROM streams
        WHERE status = 'error' AND ($1::uuid IS NULL OR tenant_id = $1)
        ORDER BY updated_at DESC LIMIT $3) AS s) AS error_streams,
    -- Every filter is on published_at IS NULL: the partial index serves it.
    (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_unpublished,
    (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox
        WHERE published_at IS NULL) AS outbox_oldest_age,
    (SELECT count(*) FROM tenant) = 1 AS tenant_found,
    (SELECT max_streams FROM tenant) AS max_streams,
    (SELECT snapshot_requests_per_minute FROM tenant) AS snapshot_requests_per_minute,
    (SELECT max_hot_streams FROM tenant) AS max_hot_streams,
    -- Counted up to the limit + 1: enough to show whether there is room, bounded in cost.
    (SELECT count(*) FROM (
        SELECT 1 FROM streams WHERE tenant_id = $1
        LIMIT (SELECT stream_limit + 1 FROM tenant)) AS used) AS streams_used
"""


async def summary(
    conn: Conn,
    tenant_id: uuid.UUID | None,
    *,
    count_in_sql: bool,
    failures: int,
    default_max_streams: int,
) -> asyncpg.Record:
    row = await conn.fetchrow(SUMMARY_SQL, tenant_id, count_in_sql, failures, default_max_streams)
    assert row is not None  # a SELECT without FROM always returns one row
    return row


def counts_of(row: asyncpg.Record) -> dict[str, int]:
    """The summary's grouped rows as count fields, by the aggregator's rules (zeros left out,
    as in Redis)."""
    tally: Counter[str] = Counter()
    for g in row["stream_groups"]:
        for field in stream_fields(g["status"], g["kind"], g["height"], g["tags"]):
            tally[field] += g["n"]
    for j in row["job_groups"]:
        for field in job_fields(j["status"]):
            tally[field] += j["n"]
    for field in snapshot_fields():
        tally[field] += row["snapshot_count"]
    return {field: n for field, n in tally.items() if n > 0}
