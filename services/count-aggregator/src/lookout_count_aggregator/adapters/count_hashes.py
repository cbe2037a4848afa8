"""The count hashes as they are now (read by the drift check and the rebuild), and the drift
check's report beside them (``lookout_shared.drift_report``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from lookout_shared.count_keys import CountKeys
from lookout_shared.drift_report import DriftReport, encode
from redis.asyncio import Redis

from lookout_count_aggregator.adapters.redis_counts import decode_counts


class RedisCountHashes:
    def __init__(self, redis: Redis, keys: CountKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def tenants(self) -> AsyncIterator[str]:
        prefix = self._keys.tenant("")
        async for raw in self._redis.scan_iter(match=self._keys.tenant_pattern(), count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            yield key.removeprefix(prefix)

    async def counts(self, tenant: str | None) -> dict[str, int]:
        key = self._keys.platform() if tenant is None else self._keys.tenant(tenant)
        return decode_counts(await self._redis.hgetall(key))

    async def save_drift_report(self, report: DriftReport) -> None:
        await self._redis.set(self._keys.drift_report(), encode(report))
