"""Reads the count hashes the count-aggregator maintains (it owns them; we only read)."""

from __future__ import annotations

import uuid

from lookout_shared.redis import Keys
from redis.asyncio import Redis


async def read_counts(redis: Redis, keys: Keys, tenant_id: uuid.UUID | None) -> dict[str, int]:
    key = keys("counts", "platform") if tenant_id is None else keys("counts", "tenant", tenant_id)
    raw = await redis.hgetall(key)
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
