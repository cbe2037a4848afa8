"""The count keys in Redis, changed only by Lua scripts so every step is atomic.

Each apply is a span (with the Redis call under it) and counts in
``lookout_aggregator_applies_total`` by outcome: applied, duplicate or stale. An apply that
meets an unreachable Redis waits until it answers (``redis_outage.py``).
"""

from __future__ import annotations

import time
import uuid
from importlib import resources
from typing import Any

from lookout_shared import telemetry
from redis.asyncio import Redis

from lookout_count_aggregator import metrics
from lookout_count_aggregator.adapters.redis_outage import RedisOutage
from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.keys import CountKeys

# A rebuild's scratch hash outlives a crashed rebuild only this long.
SCRATCH_TTL_SECONDS = 3600

_tracer = telemetry.tracer(__name__)


def load_script(name: str) -> str:
    return resources.files("lookout_count_aggregator.adapters").joinpath(name).read_text()


def decode_counts(raw: dict[Any, Any]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisCountStore:
    def __init__(
        self,
        redis: Redis,
        keys: CountKeys,
        dedupe_ttl_seconds: int,
        outage: RedisOutage | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = dedupe_ttl_seconds
        self._outage = outage or RedisOutage(max_backoff_seconds=5.0)
        self._apply = redis.register_script(load_script("apply_event.lua"))

    async def apply(self, event_id: uuid.UUID, contribution: Contribution) -> dict[str, int]:
        c = contribution
        with _tracer.start_as_current_span(
            "apply_event",
            attributes={
                "db.system": "redis",
                "db.operation.name": "EVALSHA",
                "db.stored_procedure.name": "apply_event",
                "lookout.entity.type": c.entity_type,
                "lookout.entity.id": str(c.entity_id),
                "lookout.entity.version": c.version,
                "lookout.event.id": str(event_id),
                "lookout.tenant.id": str(c.tenant_id),
            },
        ) as span:
            keys = [
                self._keys.seen(event_id),
                self._keys.entity(c.entity_type, c.entity_id),
                self._keys.tenant(c.tenant_id),
                self._keys.platform(),
                self._keys.generation(c.tenant_id),
                self._keys.pending(c.tenant_id),
                self._keys.scratch(c.tenant_id),
            ]
            args: list[str | int] = [self._ttl, c.version, SCRATCH_TTL_SECONDS, *sorted(c.fields)]
            result = await self._outage.call(lambda: self._timed_apply(keys, args))
            outcome, pairs = _text(result[0]), result[1:]
            span.set_attribute("lookout.outcome", outcome)
        metrics.APPLIES.labels(outcome).inc()
        return {_text(pairs[i]): int(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    async def _timed_apply(self, keys: list[str], args: list[str | int]) -> Any:
        started = time.perf_counter()
        result = await self._apply(keys=keys, args=args)
        metrics.APPLY_DURATION.observe(time.perf_counter() - started)
        return result

    async def tenant_counts(self, tenant_id: uuid.UUID | str) -> dict[str, int]:
        return decode_counts(await self._redis.hgetall(self._keys.tenant(tenant_id)))

    async def platform_counts(self) -> dict[str, int]:
        return decode_counts(await self._redis.hgetall(self._keys.platform()))
