"""Tenant quotas: reading and setting them, and enforcing them where streams are created
and snapshots requested."""

from __future__ import annotations

import logging
import uuid

from lookout_shared.tokens import Principal

from lookout_api.domain import access, quotas
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import NotFound
from lookout_api.domain.rows import Row
from lookout_api.handlers.outbox_writes import commit
from lookout_api.handlers.redis_outage import log_unavailable
from lookout_api.ports import Deps, QuotaStore, RedisUnavailable
from lookout_api.settings import ApiSettings

log = logging.getLogger(__name__)


def effective(settings: ApiSettings, row: Row) -> quotas.Quotas:
    """A tenant row's quotas, its NULLs filled with the defaults."""
    return quotas.effective(
        row["max_streams"],
        row["snapshot_requests_per_minute"],
        settings.default_max_streams,
        settings.default_snapshot_requests_per_minute,
        row["max_hot_streams"],
        settings.default_max_hot_streams,
    )


def snapshot_rate_key(tenant_id: uuid.UUID) -> tuple[object, ...]:
    return ("ratelimit", "snapshots", tenant_id)


async def ensure_stream_room(
    tx: QuotaStore, settings: ApiSettings, tenant_id: uuid.UUID, adding: int
) -> None:
    """Inside the create transaction: refuse (403) when ``adding`` streams would pass the
    tenant's limit. The tenant row stays locked until commit, so two concurrent creates at
    the limit cannot both pass."""
    if adding <= 0:
        return
    row = await tx.lock_quotas(tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    limit = effective(settings, row).max_streams
    used = await tx.count_streams(tenant_id, limit + 1)
    quotas.check_streams(used, adding, limit)


async def ensure_hot_room(tx: QuotaStore, settings: ApiSettings, tenant_id: uuid.UUID) -> None:
    """Inside the change transaction: refuse (403) making one more stream hot past the
    tenant's limit. As for creates, the locked tenant row queues concurrent changes, so
    two streams made hot at once cannot both take the last place."""
    row = await tx.lock_quotas(tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    limit = effective(settings, row).max_hot_streams
    quotas.check_hot_streams(await tx.count_hot_streams(tenant_id, limit + 1), limit)


async def count_snapshot_request(deps: Deps, tenant_id: uuid.UUID, overrides: Row) -> None:
    """Count one snapshot request against the tenant's per-minute quota (``overrides``: its
    tenant row's quota columns); 429 past it.

    Fails open: without Redis the request goes through (and a warning is logged), since
    coalescing and the worker's bounded concurrency still protect the cameras.
    """
    limit = effective(deps.settings, overrides).snapshot_requests_per_minute
    try:
        count, retry_after = await deps.rates.hit(
            snapshot_rate_key(tenant_id), quotas.RATE_WINDOW_SECONDS
        )
    except RedisUnavailable as exc:
        log_unavailable(log, "snapshot rate quota unavailable, not limiting: %r", exc)
        return
    quotas.check_snapshot_rate(count, limit, retry_after)


def _readable_tenant(principal: Principal, tenant_id: uuid.UUID) -> None:
    """A superuser reads any tenant's quotas; an admin only their own (another is 404)."""
    access.require_role(principal, "admin")
    if not principal.is_superuser and principal.tenant_id != tenant_id:
        raise NotFound("no such tenant")


async def get_quota_usage(
    deps: Deps, principal: Principal, tenant_id: uuid.UUID
) -> quotas.QuotaUsage:
    _readable_tenant(principal, tenant_id)
    async with deps.db.connect() as session:
        row = await session.get_quotas(tenant_id)
        if row is None:
            raise NotFound("no such tenant")
        values = effective(deps.settings, row)
        used = await session.count_streams(tenant_id, values.max_streams + 1)
        hot = await session.count_hot_streams(tenant_id, values.max_hot_streams + 1)
    requests: int | None
    try:
        requests, _ = await deps.rates.current(snapshot_rate_key(tenant_id))
    except RedisUnavailable as exc:
        log_unavailable(log, "snapshot rate counter unavailable: %r", exc)
        requests = None
    return quotas.QuotaUsage(tenant_id, values, used, requests, hot)


async def set_quotas(
    deps: Deps, principal: Principal, tenant_id: uuid.UUID, values: dict[str, int | None]
) -> quotas.QuotaUsage:
    """Set (or, with None, reset to the default) a tenant's quotas: superusers only.

    A lower stream limit than the tenant already uses is allowed: it only stops new streams.
    """
    access.require_role(principal, "superuser")
    async with deps.db.transaction() as tx:
        before = await tx.lock_quotas(tenant_id)
        if before is None:
            raise NotFound("no such tenant")
        after = await tx.set_quotas(tenant_id, values)
        assert after is not None  # the row is locked
        changes = {k: {"from": before[k], "to": after[k]} for k in values if before[k] != after[k]}
        if changes:
            entry = Entry("tenant.quotas_updated", "tenant", tenant_id, tenant_id, changes)
            await commit(tx, principal, [entry], [])
    return await get_quota_usage(deps, principal, tenant_id)
