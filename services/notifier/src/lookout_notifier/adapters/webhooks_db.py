"""Postgres reads and writes of webhook delivery (the api owns the schema).

A tenant's enabled hooks are cached in the process (lookout_shared.notified_cache): every
event of every tenant is looked up here, almost always to find no hook, and a query per
event cost the notifier's event loop more than numbering and fanning the event out. A
trigger on ``webhooks`` notifies ``lookout_webhooks`` when a change commits and the
listener (:func:`webhook_changes`) clears the cache, so a new, changed or disabled hook
applies to the events handled after that; while the listener is away every lookup goes to
Postgres.
"""

from __future__ import annotations

import uuid

import asyncpg
from lookout_shared.notified_cache import ChangeListener, TtlCache

from lookout_notifier import metrics
from lookout_notifier.domain.webhooks import Hook, Pending

CHANNEL = "lookout_webhooks"
APPLICATION_NAME = "lookout-notifier webhook changes"  # how the connection shows in Postgres
# Each hook with the event types it asked for.
TenantHooks = list[tuple[Hook, frozenset[str]]]


def webhook_changes(dsn: str, cache: TtlCache[TenantHooks]) -> ChangeListener:
    """The listener that clears ``cache`` whenever a webhook is added, changed or removed."""
    return ChangeListener(dsn, CHANNEL, cache, application_name=APPLICATION_NAME)


class WebhooksDb:
    def __init__(self, pool: asyncpg.Pool, cache: TtlCache[TenantHooks] | None = None) -> None:
        self._pool = pool
        # Not trusted until a listener connects (webhook_changes).
        self.cache: TtlCache[TenantHooks] = cache or TtlCache(0, trusted=False)

    async def hooks_for(self, tenant_id: uuid.UUID, event_type: str) -> list[Hook]:
        key = tenant_id.bytes
        hit, cached = self.cache.get(key)
        metrics.WEBHOOK_LOOKUPS.labels("cache" if hit else "postgres").inc()
        if not hit:
            epoch = self.cache.epoch  # a change committed meanwhile must not be cached over
            rows = await self._pool.fetch(
                """SELECT id, tenant_id, url, secret_sealed, events FROM webhooks
                   WHERE tenant_id = $1 AND NOT disabled""",
                tenant_id,
            )
            cached = [
                (
                    Hook(r["id"], r["tenant_id"], r["url"], r["secret_sealed"]),
                    frozenset(r["events"]),
                )
                for r in rows
            ]
            self.cache.put(key, cached, epoch)
        return [hook for hook, events in cached or () if event_type in events]

    async def record_failure(
        self, hook: Hook, event_id: uuid.UUID, event_type: str, body: str, attempts: int, error: str
    ) -> None:
        await self._pool.execute(
            """INSERT INTO webhook_deliveries
                 (webhook_id, tenant_id, event_id, event_type, body, status, attempts, last_error)
               VALUES ($1, $2, $3, $4, $5, 'failed', $6, $7)
               ON CONFLICT (webhook_id, event_id) DO UPDATE SET status = 'failed',
                 attempts = webhook_deliveries.attempts + EXCLUDED.attempts,
                 last_error = EXCLUDED.last_error, updated_at = now()""",
            hook.id,
            hook.tenant_id,
            event_id,
            event_type,
            body,
            attempts,
            error,
        )

    async def claim(self, limit: int, stale_seconds: float) -> list[Pending]:
        """Rows asked to be sent (and ones a crashed instance held past ``stale_seconds``),
        each claimed by one instance only (SKIP LOCKED)."""
        rows = await self._pool.fetch(
            """UPDATE webhook_deliveries d SET status = 'sending', updated_at = now()
               FROM webhooks w
               WHERE w.id = d.webhook_id AND d.id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE status = 'replay'
                    OR (status = 'sending' AND updated_at < now() - make_interval(secs => $2))
                 ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING d.id, d.event_id, d.body, w.id AS hook_id, w.tenant_id, w.url,
                         w.secret_sealed""",
            limit,
            stale_seconds,
        )
        return [
            Pending(
                r["id"],
                Hook(r["hook_id"], r["tenant_id"], r["url"], r["secret_sealed"]),
                r["event_id"],
                r["body"],
            )
            for r in rows
        ]

    async def settle(self, delivery_id: uuid.UUID, attempts: int, error: str | None) -> None:
        await self._pool.execute(
            """UPDATE webhook_deliveries SET status = $2, attempts = attempts + $3,
                 last_error = coalesce($4, last_error), updated_at = now() WHERE id = $1""",
            delivery_id,
            "failed" if error else "delivered",
            attempts,
            error,
        )

    async def ping(self) -> object:
        return await self._pool.fetchval("SELECT 1")
