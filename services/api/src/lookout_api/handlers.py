"""One function per use case. Routes and the CLI call these; they hold no HTTP or argparse.

A write and the events it causes commit in one transaction through the outbox.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from lookout_shared import outbox
from lookout_shared.contracts import CaptureSnapshot, Payload, ProbeStream, SnapshotJobState
from lookout_shared.envelope import Envelope, make_envelope
from lookout_shared.tokens import Principal, Role

from lookout_api.adapters import counts_redis, passwords, snapshots_db, streams_db, tenancy_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, streams
from lookout_api.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized

PRODUCER = "api"
MIN_PASSWORD = 12


# Auth and tenancy -------------------------------------------------------------------------


async def login(deps: Deps, email: str, password: str) -> tuple[str, int]:
    """An access token and its lifetime in seconds; the same error for any bad credential."""
    async with deps.pool.acquire() as conn:
        user = await tenancy_db.user_for_login(conn, email)
    ok = await passwords.verify_password(user["password_hash"] if user else None, password)
    if not ok or user is None:
        raise Unauthorized("wrong e-mail or password")
    ttl = timedelta(minutes=deps.settings.access_token_minutes)
    token = deps.codec.issue(user["id"], user["tenant_id"], user["role"], ttl)
    return token, int(ttl.total_seconds())


async def create_tenant(deps: Deps, principal: Principal | None, name: str) -> asyncpg.Record:
    """``principal`` None means the operator's CLI, which may always create tenants."""
    if principal is not None:
        access.require_role(principal, "superuser")
    async with deps.pool.acquire() as conn:
        row = await tenancy_db.insert_tenant(conn, name)
    if row is None:
        raise Conflict(f"a tenant named {name!r} exists")
    return row


async def create_user(
    deps: Deps,
    principal: Principal | None,
    email: str,
    password: str,
    role: Role,
    tenant_id: uuid.UUID | None,
) -> asyncpg.Record:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    if role == "superuser":
        if principal is not None:
            access.require_role(principal, "superuser")
        tenant_id = None
    elif principal is not None:
        access.require_role(principal, "admin")
        tenant_id = access.acting_tenant(principal, tenant_id)
    elif tenant_id is None:
        raise InvalidInput("tenant_id: required for a tenant user")
    password_hash = await passwords.hash_password(password)
    async with deps.pool.acquire() as conn:
        if tenant_id is not None and not await tenancy_db.tenant_exists(conn, tenant_id):
            raise NotFound("no such tenant")
        row = await tenancy_db.insert_user(conn, tenant_id, email, password_hash, role)
    if row is None:
        raise Conflict("a user with this e-mail exists")
    return row


async def current_user(deps: Deps, principal: Principal) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        row = await tenancy_db.user_by_id(conn, principal.user_id)
    if row is None:
        raise Unauthorized("the account no longer exists")
    return row


# Streams ----------------------------------------------------------------------------------


async def create_stream(
    deps: Deps,
    principal: Principal,
    *,
    name: str,
    url: str,
    tags: list[str],
    enabled: bool,
    tenant_id: uuid.UUID | None = None,
) -> asyncpg.Record:
    access.require_role(principal, "operator")
    tenant = access.acting_tenant(principal, tenant_id)
    parsed = streams.check_url(url, deps.settings.media_dir)
    clean_tags = streams.normalise_tags(tags)
    async with deps.pool.acquire() as conn, conn.transaction():
        if principal.is_superuser and not await tenancy_db.tenant_exists(conn, tenant):
            raise NotFound("no such tenant")
        row = await streams_db.insert_stream(
            conn,
            tenant,
            name,
            url,
            parsed.kind,
            clean_tags,
            enabled,
            streams.initial_status(enabled),
        )
        events = [_stream_event("stream.created", row)]
        if enabled:
            events.append(_event("stream.probe", ProbeStream(stream_id=row["id"]), row))
        await outbox.enqueue(conn, *events)
    return row


async def get_stream(deps: Deps, principal: Principal, stream_id: uuid.UUID) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        row = await streams_db.get_stream(conn, stream_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such stream")
    return row


async def list_streams(
    deps: Deps,
    principal: Principal,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    async with deps.pool.acquire() as conn:
        return await streams_db.list_streams(conn, access.tenant_filter(principal), limit, after)


# Snapshots --------------------------------------------------------------------------------


async def request_snapshot(
    deps: Deps, principal: Principal, stream_id: uuid.UUID
) -> tuple[asyncpg.Record, bool]:
    """Queue a capture, or join the stream's active job. Never waits for ffmpeg."""
    access.require_role(principal, "operator")
    async with deps.pool.acquire() as conn, conn.transaction():
        stream = await streams_db.get_stream(conn, stream_id, access.tenant_filter(principal))
        if stream is None:
            raise NotFound("no such stream")
        if not stream["enabled"]:
            raise Conflict("the stream is disabled; enable it to take snapshots")
        job, created = await snapshots_db.insert_job_or_join(conn, stream["tenant_id"], stream_id)
        if created:
            command = CaptureSnapshot(job_id=job["id"], stream_id=stream_id)
            queued = SnapshotJobState(stream_id=stream_id, status="queued")
            await outbox.enqueue(
                conn,
                _event("snapshot.capture", command, job),
                _event("snapshot_job.queued", queued, job),
            )
    return job, created


async def get_job(deps: Deps, principal: Principal, job_id: uuid.UUID) -> asyncpg.Record:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.get_job(conn, job_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such job")
    return row


async def snapshot_file(
    deps: Deps, principal: Principal, snapshot_id: uuid.UUID
) -> tuple[asyncpg.Record, Path]:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.get_snapshot(conn, snapshot_id, access.tenant_filter(principal))
    return _file_of(deps, row)


async def latest_snapshot_file(
    deps: Deps, principal: Principal, stream_id: uuid.UUID
) -> tuple[asyncpg.Record, Path]:
    async with deps.pool.acquire() as conn:
        row = await snapshots_db.latest_snapshot(conn, stream_id, access.tenant_filter(principal))
    return _file_of(deps, row)


def _file_of(deps: Deps, row: asyncpg.Record | None) -> tuple[asyncpg.Record, Path]:
    if row is None:
        raise NotFound("no such snapshot")
    path = deps.storage.path_of(row["storage_key"])
    if not path.is_file():
        raise NotFound("the snapshot's file is missing from storage")
    return row, path


# Counts -----------------------------------------------------------------------------------


async def counts(deps: Deps, principal: Principal) -> dict[str, int]:
    return await counts_redis.read_counts(deps.redis, deps.keys, access.tenant_filter(principal))


# Events -----------------------------------------------------------------------------------


def _event(message_type: str, payload: Payload, row: asyncpg.Record) -> Envelope:
    return make_envelope(
        message_type,
        payload,
        producer=PRODUCER,
        tenant_id=row["tenant_id"],
        entity_id=row["id"],
        entity_version=row["version"],
    )


def _stream_event(message_type: str, row: asyncpg.Record) -> Envelope:
    return _event(message_type, streams.state_of(dict(row)), row)
