"""Streams: create, read, change and delete one stream.

Every write commits its audit entry and its events (stream.created/updated/deleted, and a
stream.probe command for a new URL) in the same transaction as the row.
"""

from __future__ import annotations

import uuid
from typing import Any

from lookout_shared.tokens import Principal

from lookout_api.domain import access, audit, streams
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import NotFound, PreconditionFailed
from lookout_api.handlers.outbox_writes import (
    commit,
    stream_changed,
    stream_deleted,
    stream_deleted_cascade,
)
from lookout_api.handlers.quotas import ensure_hot_room, ensure_stream_room
from lookout_api.ports import Deps, Row

CREATED_FIELDS = ("name", "url", "kind", "tags", "enabled")


async def create_stream(
    deps: Deps,
    principal: Principal,
    *,
    name: str,
    url: str,
    tags: list[str],
    enabled: bool,
    tenant_id: uuid.UUID | None = None,
) -> Row:
    access.require_role(principal, "operator")
    tenant = access.acting_tenant(principal, tenant_id)
    values = streams.new_stream(name, url, tags, enabled, deps.settings.media_dir)
    async with deps.db.transaction() as tx:
        if principal.is_superuser and not await tx.tenant_exists(tenant):
            raise NotFound("no such tenant")
        await ensure_stream_room(tx, deps.settings, tenant, 1)
        row = (await tx.insert_streams(tenant, [values]))[0]
        await commit(
            tx,
            principal,
            [created_entry(row)],
            stream_changed(row, created=True, probe=enabled),
        )
    await deps.cache.invalidate([tenant])
    return row


def created_entry(row: Row) -> Entry:
    return Entry(
        "stream.created", "stream", row["id"], row["tenant_id"], audit.snapshot(row, CREATED_FIELDS)
    )


def updated_entry(before: Row, after: Row, changed: tuple[str, ...]) -> Entry:
    changes = audit.diff(before, after, changed)
    changes["version"] = {"from": before["version"], "to": after["version"]}
    return Entry("stream.updated", "stream", after["id"], after["tenant_id"], changes)


async def get_stream(deps: Deps, principal: Principal, stream_id: uuid.UUID) -> Row:
    async with deps.db.connect() as session:
        row = await session.get_stream(stream_id, access.tenant_filter(principal))
    if row is None:
        raise NotFound("no such stream")
    return row


def check_version(row: Row, expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise PreconditionFailed(
            f"the stream is at version {row['version']}, not {expected}; "
            "fetch it again and retry with its current ETag"
        )


async def update_stream(
    deps: Deps,
    principal: Principal,
    stream_id: uuid.UUID,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Row:
    """Apply ``changes`` if the stream is still at ``expected_version`` (None: any).

    The row lock makes concurrent changes queue up; the second one then sees the new
    version and fails with 412 instead of overwriting the first. Making a stream hot also
    locks its tenant's row (after the stream's, the order bulk writes take too) for the
    hot stream quota.
    """
    access.require_role(principal, "operator")
    async with deps.db.transaction() as tx:
        locked = await tx.lock_streams([stream_id], access.tenant_filter(principal))
        if not locked:
            raise NotFound("no such stream")
        before = locked[0]
        check_version(before, expected_version)
        change = streams.apply_changes(before, changes, deps.settings.media_dir)
        if not change.changed:
            return before  # nothing to do: the version stays
        if change.heats:
            await ensure_hot_room(tx, deps.settings, before["tenant_id"])
        updated = await tx.update_streams([(stream_id, before["version"], change.values)])
        after = updated[0]
        await commit(
            tx,
            principal,
            [updated_entry(before, after, change.changed)],
            stream_changed(after, created=False, probe=change.probe),
        )
    await deps.cache.invalidate([after["tenant_id"]])
    return after


async def delete_stream(
    deps: Deps, principal: Principal, stream_id: uuid.UUID, expected_version: int | None
) -> None:
    access.require_role(principal, "operator")
    async with deps.db.transaction() as tx:
        locked = await tx.lock_streams([stream_id], access.tenant_filter(principal))
        if not locked:
            raise NotFound("no such stream")
        row = locked[0]
        check_version(row, expected_version)
        cascade = stream_deleted_cascade(
            await tx.fail_active_jobs(stream_id),
            await tx.snapshots_of(stream_id),
        )
        await tx.delete_stream(stream_id, row["version"])
        entry = Entry(
            "stream.deleted",
            "stream",
            stream_id,
            row["tenant_id"],
            {"name": row["name"], "version": row["version"]},
        )
        await commit(tx, principal, [entry], [stream_deleted(row), *cascade])
    await deps.cache.invalidate([row["tenant_id"]])
