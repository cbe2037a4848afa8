"""Tenant quotas: reading and setting them, and enforcing them where streams are created
and snapshots requested."""

from __future__ import annotations

import asyncio
import logging
import uuid

from lookout_shared.db import Conn
from lookout_shared.tokens import Principal
from redis.exceptions import RedisError

from lookout_api.adapters import quotas_db, rate_limit_redis
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, quotas
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import NotFound
from lookout_api.domain.rows import Row
from lookout_api.handlers.outbox_writes import commit
from lookout_api.settings import ApiSettings

log = logging.getLogger(__name__)
# The snapshot rate counter waits no longer than this for Redis, then lets the request by.
REDIS_TIMEOUT_SECONDS = 0.5


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


def snapshot_rate_key(deps: Deps, tenant_id: uuid.UUID) -> str:
    return deps.keys("ratelimit", "snapshots", tenant_id)


async def ensure_stream_room(
    conn: Conn, settings: ApiSettings, tenant_id: uuid.UUID, adding: int
) -> None:
    """Inside the create transaction: refuse (403) when ``adding`` streams would pass the
    tenant's limit. The tenant row stays locked until commit, so two concurrent creates at
    the limit cannot both pass."""
    if adding <= 0:
        return
    row = await quotas_db.lock_quotas(conn, tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    limit = effective(settings, row).max_streams
    used = await quotas_db.count_streams(conn, tenant_id, limit + 1)
    quotas.check_streams(used, adding, limit)


async def ensure_hot_room(conn: Conn, settings: ApiSettings, tenant_id: uuid.UUID) -> None:
    """Inside the change transaction: refuse (403) making one more stream hot past the
    tenant's limit. As for creates, the locked tenant row queues concurrent changes, so
    two streams made hot at once cannot both take the last place."""
    row = await quotas_db.lock_quotas(conn, tenant_id)
    if row is None:
        raise NotFound("no such tenant")
    limit = effective(settings, row).max_hot_streams
    quotas.check_hot_streams(await quotas_db.count_hot_streams(conn, tenant_id, limit + 1), limit)


async def count_snapshot_request(deps: Deps, tenant_id: uuid.UUID, overrides: Row) -> None:
    """Count one snapshot request against the tenant's per-minute quota (``overrides``: its
    tenant row's quota columns); 429 past it.

    Fails open: without Redis the request goes through (and a warning is logged), since
    coalescing and the worker's bounded concurrency still protect the cameras.
    """
    limit = effective(deps.settings, overrides).snapshot_requests_per_minute
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            count, retry_after = await rate_limit_redis.hit(
                deps.redis, snapshot_rate_key(deps, tenant_id), quotas.RATE_WINDOW_SECONDS
            )
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("snapshot rate quota unavailable, not limiting: %r", exc)
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
    async with deps.pool.acquire() as conn:
        row = await quotas_db.get_quotas(conn, tenant_id)
        if row is None:
            raise NotFound("no such tenant")
        values = effective(deps.settings, row)
        used = await quotas_db.count_streams(conn, tenant_id, values.max_streams + 1)
        hot = await quotas_db.count_hot_streams(conn, tenant_id, values.max_hot_streams + 1)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            requests, _ = await rate_limit_redis.current(
                deps.redis, snapshot_rate_key(deps, tenant_id)
            )
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("snapshot rate counter unavailable: %r", exc)
        requests = None
    return quotas.QuotaUsage(tenant_id, values, used, requests, hot)


async def set_quotas(
    deps: Deps, principal: Principal, tenant_id: uuid.UUID, values: dict[str, int | None]
) -> quotas.QuotaUsage:
    """Set (or, with None, reset to the default) a tenant's quotas: superusers only.

    A lower stream limit than the tenant already uses is allowed: it only stops new streams.
    """
    access.require_role(principal, "superuser")
    async with deps.pool.acquire() as conn, conn.transaction():
        before = await quotas_db.lock_quotas(conn, tenant_id)
        if before is None:
            raise NotFound("no such tenant")
        after = await quotas_db.set_quotas(conn, tenant_id, values)
        assert after is not None  # the row is locked
        changes = {k: {"from": before[k], "to": after[k]} for k in values if before[k] != after[k]}
        if changes:
            entry = Entry("tenant.quotas_updated", "tenant", tenant_id, tenant_id, changes)
            await commit(conn, principal, [entry], [])
    return await get_quota_usage(deps, principal, tenant_id)
