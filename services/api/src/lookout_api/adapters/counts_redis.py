"""Reads the count hashes the count-aggregator maintains (it owns them; we only read)."""

from __future__ import annotations

import uuid

from lookout_shared.redis import Keys
from redis.asyncio import Redis


def hash_key(keys: Keys, tenant_id: uuid.UUID | None) -> str:
    return keys("counts", "platform") if tenant_id is None else keys("counts", "tenant", tenant_id)


_key = hash_key  # the former name, still used by the dashboard


async def read_counts(redis: Redis, keys: Keys, tenant_id: uuid.UUID | None) -> dict[str, int]:
    raw = await redis.hgetall(hash_key(keys, tenant_id))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


async def read_fields(
    redis: Redis, keys: Keys, tenant_id: uuid.UUID | None, *fields: str
) -> list[int | None]:
    """The fields' values; None where the field is absent (the aggregator drops zeros)."""
    values = await redis.hmget(hash_key(keys, tenant_id), list(fields))
    return [None if v is None else int(v) for v in values]
