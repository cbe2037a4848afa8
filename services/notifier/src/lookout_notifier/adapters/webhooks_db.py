"""Postgres reads and writes of webhook delivery (the api owns the schema)."""

from __future__ import annotations

import uuid

import asyncpg

from lookout_notifier.domain.webhooks import Hook, Pending


class WebhooksDb:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hooks_for(self, tenant_id: uuid.UUID, event_type: str) -> list[Hook]:
        rows = await self._pool.fetch(
            """SELECT id, tenant_id, url, secret_sealed FROM webhooks
               WHERE tenant_id = $1 AND NOT disabled AND $2 = ANY (events)""",
            tenant_id,
            event_type,
        )
        return [Hook(**dict(r)) for r in rows]

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
