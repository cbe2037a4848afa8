"""Webhooks per tenant (admins): create with a URL guard, list, delete, test-fire, and the
failed deliveries with their replay. The notifier delivers (lookout_notifier.webhooks)."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime

import asyncpg
from lookout_shared.addresses import EgressPolicy
from lookout_shared.contracts import EVENTS
from lookout_shared.db import Conn
from lookout_shared.sealed import sealer_for
from lookout_shared.tokens import Principal
from lookout_shared.webhook_urls import RefusedUrl, parse_target, resolve_allowed

from lookout_api.adapters import webhooks_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import access
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import InvalidInput, NotFound
from lookout_api.handlers.outbox_writes import commit

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, like Standard Webhooks')


async def create_webhook(
    deps: Deps,
    principal: Principal,
    url: str,
    events: list[str],
    secret: str | None,
    tenant_id: uuid.UUID | None,
) -> tuple[asyncpg.Record, str]:
    """The hook's row and its signing secret (shown in this answer only)."""
    access.require_role(principal, "admin")
    tenant = access.acting_tenant(principal, tenant_id)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise InvalidInput(f"unknown event type(s) {unknown}; known: {sorted(EVENTS)}")
    policy = EgressPolicy.build(deps.settings.allowed_networks)
    try:
        await resolve_allowed(policy, parse_target(url))
    except RefusedUrl as exc:
        raise InvalidInput(str(exc)) from None
    secret = secret or SECRET_PREFIX + secrets.token_urlsafe(32)
    sealed = sealer_for(deps.settings).seal(secret)
    async with deps.pool.acquire() as conn, conn.transaction():
        try:
            row = await webhooks_db.insert(conn, tenant, url, sorted(set(events)), sealed)
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("no such tenant") from None
        entry = Entry("webhook.created", "webhook", row["id"], tenant, {"events": row["events"]})
        await commit(conn, principal, [entry], [])
    return row, secret


async def list_webhooks(deps: Deps, principal: Principal, limit: int) -> list[asyncpg.Record]:
    access.require_role(principal, "admin")
    async with deps.pool.acquire() as conn:
        return await webhooks_db.list_for(conn, access.tenant_filter(principal), limit)


async def delete_webhook(deps: Deps, principal: Principal, webhook_id: uuid.UUID) -> None:
    access.require_role(principal, "admin")
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await webhooks_db.delete(conn, webhook_id, access.tenant_filter(principal))
        if row is None:
            raise NotFound("no such webhook")
        await commit(conn, principal, [Entry("webhook.deleted", "webhook", webhook_id, row[1])], [])


async def _own(conn: Conn, principal: Principal, webhook_id: uuid.UUID) -> asyncpg.Record:
    access.require_role(principal, "admin")
    row = await webhooks_db.get(conn, webhook_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such webhook")
    return row


async def test_fire(deps: Deps, principal: Principal, webhook_id: uuid.UUID) -> asyncpg.Record:
    """Queue a ``webhook.test`` delivery; the notifier sends it like a replay."""
    async with deps.pool.acquire() as conn:
        hook = await _own(conn, principal, webhook_id)
        event_id = uuid.uuid4()
        body = {
            "id": str(event_id),
            "type": "webhook.test",
            "occurred_at": datetime.now(UTC).isoformat(),
            "tenant_id": str(hook["tenant_id"]),
            "entity_id": str(webhook_id),
            "data": {},
        }
        return await webhooks_db.insert_test(
            conn, webhook_id, hook["tenant_id"], event_id, json.dumps(body)
        )


async def list_deliveries(
    deps: Deps, principal: Principal, webhook_id: uuid.UUID, status: str | None, limit: int
) -> list[asyncpg.Record]:
    async with deps.pool.acquire() as conn:
        await _own(conn, principal, webhook_id)
        return await webhooks_db.list_deliveries(conn, webhook_id, status, limit)


async def replay(
    deps: Deps, principal: Principal, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        await _own(conn, principal, webhook_id)
        row = await webhooks_db.request_replay(conn, webhook_id, delivery_id)
    if row is None:
        raise NotFound("no such failed or delivered delivery of this webhook")
    return row
