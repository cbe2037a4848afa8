"""Counts straight from Postgres, by the aggregator's own rules: the fallback when Redis
cannot answer (slow, down, or without a hash for the scope yet)."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
from lookout_shared.count_rules import grouped_counts


async def read_counts(pool: asyncpg.Pool, tenant_id: uuid.UUID | None) -> dict[str, int]:
    """The tenant's counts, or the platform's (every tenant summed) when ``tenant_id`` is None."""
    per_tenant = await grouped_counts(pool, None if tenant_id is None else [tenant_id])
    return dict(sum(per_tenant.values(), Counter[str]()))
