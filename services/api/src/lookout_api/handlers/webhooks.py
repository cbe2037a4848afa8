"""Webhooks per tenant (admins): create with a URL guard, list, delete, test-fire, and the
failed deliveries with their replay. The notifier delivers (lookout_notifier.webhooks)."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime

from lookout_shared.addresses import EgressPolicy
from lookout_shared.contracts import EVENTS
from lookout_shared.sealed import sealer_for
from lookout_shared.tokens import Principal
from lookout_shared.webhook_urls import RefusedUrl, parse_target, resolve_allowed

from lookout_api.domain import access
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import InvalidInput, NotFound
from lookout_api.handlers.outbox_writes import commit
from lookout_api.ports import Deps, MissingReference, Row, Session

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, like Standard Webhooks')


async def create_webhook(
    deps: Deps,
    principal: Principal,
    url: str,
    events: list[str],
    secret: str | None,
    tenant_id: uuid.UUID | None,
) -> tuple[Row, str]:
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
    async with deps.db.transaction() as tx:
        try:
            row = await tx.insert_webhook(tenant, url, sorted(set(events)), sealed)
        except MissingReference:
            raise NotFound("no such tenant") from None
        entry = Entry("webhook.created", "webhook", row["id"], tenant, {"events": row["events"]})
        await commit(tx, principal, [entry], [])
    return row, secret


async def list_webhooks(deps: Deps, principal: Principal, limit: int) -> list[Row]:
    access.require_role(principal, "admin")
    async with deps.db.connect() as session:
        return await session.list_webhooks(access.tenant_filter(principal), limit)


async def delete_webhook(deps: Deps, principal: Principal, webhook_id: uuid.UUID) -> None:
    access.require_role(principal, "admin")
    async with deps.db.transaction() as tx:
        row = await tx.delete_webhook(webhook_id, access.tenant_filter(principal))
        if row is None:
            raise NotFound("no such webhook")
        await commit(
            tx, principal, [Entry("webhook.deleted", "webhook", webhook_id, row["tenant_id"])], []
        )


async def _own(session: Session, principal: Principal, webhook_id: uuid.UUID) -> Row:
    access.require_role(principal, "admin")
    row = await session.get_webhook(webhook_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such webhook")
    return row


async def test_fire(deps: Deps, principal: Principal, webhook_id: uuid.UUID) -> Row:
    """Queue a ``webhook.test`` delivery; the notifier sends it like a replay."""
    async with deps.db.connect() as session:
        hook = await _own(session, principal, webhook_id)
        event_id = uuid.uuid4()
        body = {
            "id": str(event_id),
            "type": "webhook.test",
            "occurred_at": datetime.now(UTC).isoformat(),
            "tenant_id": str(hook["tenant_id"]),
            "entity_id": str(webhook_id),
            "data": {},
        }
        return await session.insert_test_delivery(
            webhook_id, hook["tenant_id"], event_id, json.dumps(body)
        )


async def list_deliveries(
    deps: Deps, principal: Principal, webhook_id: uuid.UUID, status: str | None, limit: int
) -> list[Row]:
    async with deps.db.connect() as session:
        await _own(session, principal, webhook_id)
        return await session.list_deliveries(webhook_id, status, limit)


async def replay(
    deps: Deps, principal: Principal, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> Row:
    async with deps.db.connect() as session:
        await _own(session, principal, webhook_id)
        row = await session.request_replay(webhook_id, delivery_id)
    if row is None:
        raise NotFound("no such failed or delivered delivery of this webhook")
    return row
