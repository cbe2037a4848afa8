"""The count keys in Redis, changed only by Lua scripts so every step is atomic.

A batch of events is applied by one script call (``apply_events.lua``): one Redis round trip
and one span for the batch, each event still atomic, idempotent by event id and
order-tolerant by entity version. Events count in ``lookout_aggregator_applies_total`` by
outcome: applied, duplicate or stale. An apply that meets an unreachable Redis waits until
it answers (``redis_outage.py``); a retried batch finds the events it applied before as
duplicates.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any

from lookout_shared import telemetry
from lookout_shared.count_keys import CountKeys
from redis.asyncio import Redis

from lookout_count_aggregator import metrics
from lookout_count_aggregator.adapters.redis_outage import RedisOutage
from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.ports import Applied, Outcome

# A rebuild's scratch hash outlives a crashed rebuild only this long.
SCRATCH_TTL_SECONDS = 3600
# The script's outcome codes (apply_events.lua).
OUTCOMES: tuple[Outcome, ...] = ("duplicate", "stale", "applied", "applied")
MOVED = 3

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
        self._apply = redis.register_script(load_script("apply_events.lua"))

    async def apply(self, event_id: uuid.UUID, contribution: Contribution) -> dict[str, int]:
        """One event: the tenant's fields it moved, with their new values."""
        applied = await self.apply_many([(event_id, contribution)])
        return applied.counts.get(contribution.tenant_id, {})

    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        """Apply ``events`` in order with one script call (one Redis round trip)."""
        if not events:
            return Applied()
        k = self._keys
        # Keys and reads shared by a tenant's events go once per batch (apply_events.lua).
        tenants: dict[uuid.UUID, int] = {}
        tenant_keys: list[str] = []
        event_keys: list[str] = []
        states: list[tuple[int, str, list[str]]] = []
        for event_id, c in events:
            t = tenants.get(c.tenant_id)
            if t is None:
                t = tenants[c.tenant_id] = len(tenants) + 1
                tid = c.tenant_id
                tenant_keys += (k.tenant(tid), k.generation(tid), k.pending(tid), k.scratch(tid))
            event_keys += (k.seen(event_id), k.entity(c.entity_type, c.entity_id))
            states.append((t, str(c.version), sorted(c.fields)))
        keys = [k.platform(), *tenant_keys, *event_keys]
        args: list[str | int] = [self._ttl, SCRATCH_TTL_SECONDS, len(tenants), json.dumps(states)]
        with _tracer.start_as_current_span(
            "apply_events",
            attributes={
                "db.system": "redis",
                "db.operation.name": "EVALSHA",
                "db.stored_procedure.name": "apply_events",
                "db.operation.batch.size": len(events),
            },
        ) as span:
            codes, changes = await self._outage.call(lambda: self._timed_apply(keys, args))
            applied = Applied(
                outcomes=[OUTCOMES[code] for code in codes],
                moved=[code == MOVED for code in codes],
                counts={
                    tenant: {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
                    for tenant, flat in zip(tenants, changes, strict=True)
                    if flat
                },
            )
            outcomes = Counter(applied.outcomes)
            if span.is_recording():
                span.set_attribute(
                    "lookout.entity.types", sorted({c.entity_type for _, c in events})
                )
                span.set_attribute("lookout.outcomes", sorted(outcomes))
        for outcome, n in outcomes.items():
            metrics.APPLIES.labels(outcome).inc(n)
        return applied

    async def _timed_apply(self, keys: list[str], args: list[str | int]) -> Any:
        started = time.perf_counter()
        result = await self._apply(keys=keys, args=args)
        metrics.APPLY_DURATION.observe(time.perf_counter() - started)
        return result

    async def tenant_counts(self, tenant_id: uuid.UUID | str) -> dict[str, int]:
        return decode_counts(await self._redis.hgetall(self._keys.tenant(tenant_id)))

    async def platform_counts(self) -> dict[str, int]:
        return decode_counts(await self._redis.hgetall(self._keys.platform()))
