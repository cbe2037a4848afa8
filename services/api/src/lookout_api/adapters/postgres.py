"""The Postgres side of the ports (ports.Database, ports.Session): one session per pooled
connection, each method one statement of the *_db.py modules beside this one."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, cast

import asyncpg
from lookout_shared import outbox
from lookout_shared.db import Conn
from lookout_shared.envelope import Envelope

from lookout_api.adapters import (
    api_keys_db,
    audit_db,
    counts_sql,
    dashboard_db,
    quotas_db,
    snapshots_db,
    stream_list_db,
    streams_db,
    tenancy_db,
    webhooks_db,
)
from lookout_api.adapters.connections import Connections
from lookout_api.domain.audit import Entry
from lookout_api.domain.listing import StreamQuery
from lookout_api.ports import Actor, MissingReference, Row


class PostgresDatabase:
    """Reads the pool from ``connections`` at each use, so a replaced pool is used at once."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[PostgresSession]:
        async with self._connections.pool.acquire() as conn:
            yield PostgresSession(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresSession]:
        async with self._connections.pool.acquire() as conn, conn.transaction():
            yield PostgresSession(conn)

    async def count_in_sql(self, tenant_id: uuid.UUID | None) -> dict[str, int]:
        return await counts_sql.read_counts(self._connections.pool, tenant_id)


class PostgresSession:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def block() -> AsyncIterator[None]:
            async with self.conn.transaction():
                yield

        return block()

    # streams
    async def get_stream(self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await streams_db.get_stream(self.conn, stream_id, tenant_id)

    async def lock_streams(
        self, stream_ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None
    ) -> list[Row]:
        return list(await streams_db.lock_streams(self.conn, stream_ids, tenant_id))

    async def insert_streams(
        self, tenant_id: uuid.UUID, values: Sequence[dict[str, Any]]
    ) -> list[Row]:
        return list(await streams_db.insert_many(self.conn, tenant_id, values))

    async def update_streams(
        self, updates: Sequence[tuple[uuid.UUID, int, dict[str, Any]]]
    ) -> list[Row]:
        return list(await streams_db.update_many(self.conn, updates))

    async def fail_active_jobs(self, stream_id: uuid.UUID) -> list[Row]:
        return list(await streams_db.fail_active_jobs(self.conn, stream_id))

    async def snapshots_of(self, stream_id: uuid.UUID) -> list[Row]:
        return list(await streams_db.snapshots_of(self.conn, stream_id))

    async def delete_stream(self, stream_id: uuid.UUID, version: int) -> bool:
        return await streams_db.delete_stream(self.conn, stream_id, version)

    # tenants and users
    async def insert_tenant(self, name: str) -> Row | None:
        return await tenancy_db.insert_tenant(self.conn, name)

    async def tenant_by_name(self, name: str) -> Row | None:
        return await tenancy_db.tenant_by_name(self.conn, name)

    async def tenant_exists(self, tenant_id: uuid.UUID) -> bool:
        return await tenancy_db.tenant_exists(self.conn, tenant_id)

    async def insert_user(
        self, tenant_id: uuid.UUID | None, email: str, password_hash: str, role: str
    ) -> Row | None:
        return await tenancy_db.insert_user(self.conn, tenant_id, email, password_hash, role)

    async def user_for_login(self, email: str) -> Row | None:
        return await tenancy_db.user_for_login(self.conn, email)

    async def user_standing(self, user_id: uuid.UUID) -> Row | None:
        return await tenancy_db.user_standing(self.conn, user_id)

    async def user_by_id(self, user_id: uuid.UUID) -> Row | None:
        return await tenancy_db.user_by_id(self.conn, user_id)

    async def delete_user(self, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await tenancy_db.delete_user(self.conn, user_id, tenant_id)

    async def list_users(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        return list(await tenancy_db.list_users(self.conn, tenant_id, limit))

    # quotas
    async def get_quotas(self, tenant_id: uuid.UUID) -> Row | None:
        return await quotas_db.get_quotas(self.conn, tenant_id)

    async def lock_quotas(self, tenant_id: uuid.UUID) -> Row | None:
        return await quotas_db.lock_quotas(self.conn, tenant_id)

    async def count_streams(self, tenant_id: uuid.UUID, up_to: int) -> int:
        return await quotas_db.count_streams(self.conn, tenant_id, up_to)

    async def count_hot_streams(self, tenant_id: uuid.UUID, up_to: int) -> int:
        return await quotas_db.count_hot_streams(self.conn, tenant_id, up_to)

    async def set_quotas(self, tenant_id: uuid.UUID, values: dict[str, int | None]) -> Row | None:
        return await quotas_db.set_quotas(self.conn, tenant_id, values)

    # API keys
    async def insert_key(
        self,
        tenant_id: uuid.UUID,
        created_by: uuid.UUID,
        name: str,
        role: str,
        prefix: str,
        secret_hash: bytes,
    ) -> Row:
        try:
            return await api_keys_db.insert_key(
                self.conn, tenant_id, created_by, name, role, prefix, secret_hash
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise MissingReference(str(exc)) from exc

    async def active_key(self, secret_hash: bytes) -> Row | None:
        return await api_keys_db.active_key(self.conn, secret_hash)

    async def key_is_live(self, key_id: uuid.UUID) -> bool:
        return await api_keys_db.key_is_live(self.conn, key_id)

    async def list_keys(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        return list(await api_keys_db.list_keys(self.conn, tenant_id, limit))

    async def revoke_key(self, key_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await api_keys_db.revoke_key(self.conn, key_id, tenant_id)

    # audit and outbox
    async def record_audit(self, actor: Actor, entries: Sequence[Entry]) -> None:
        await audit_db.record(self.conn, actor, entries)

    async def list_audit(
        self,
        tenant_id: uuid.UUID | None,
        limit: int,
        before_id: int | None,
        entity_id: uuid.UUID | None,
    ) -> list[Row]:
        return list(await audit_db.list_entries(self.conn, tenant_id, limit, before_id, entity_id))

    async def enqueue(self, *envelopes: Envelope) -> None:
        await outbox.enqueue(self.conn, *envelopes)

    # snapshots and jobs
    async def stream_for_request(
        self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        return await snapshots_db.stream_for_request(self.conn, stream_id, tenant_id)

    async def fresh_snapshot(self, stream_id: uuid.UUID, max_age_seconds: int) -> Row | None:
        return await snapshots_db.fresh_snapshot(self.conn, stream_id, max_age_seconds)

    async def insert_job_or_join(
        self, tenant_id: uuid.UUID, stream_id: uuid.UUID
    ) -> tuple[Row, bool]:
        try:
            return await snapshots_db.insert_job_or_join(self.conn, tenant_id, stream_id)
        except asyncpg.ForeignKeyViolationError as exc:
            raise MissingReference(str(exc)) from exc

    async def get_job(self, job_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await snapshots_db.get_job(self.conn, job_id, tenant_id)

    async def get_snapshot(self, snapshot_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await snapshots_db.get_snapshot(self.conn, snapshot_id, tenant_id)

    async def latest_snapshot(
        self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        return await snapshots_db.latest_snapshot(self.conn, stream_id, tenant_id)

    async def list_snapshots(
        self, stream_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Row]:
        return list(await snapshots_db.list_snapshots(self.conn, stream_id, limit, after))

    # webhooks
    async def insert_webhook(
        self, tenant_id: uuid.UUID, url: str, events: list[str], sealed: bytes
    ) -> Row:
        try:
            return await webhooks_db.insert(self.conn, tenant_id, url, events, sealed)
        except asyncpg.ForeignKeyViolationError as exc:
            raise MissingReference(str(exc)) from exc

    async def list_webhooks(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        return list(await webhooks_db.list_for(self.conn, tenant_id, limit))

    async def get_webhook(self, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return await webhooks_db.get(self.conn, webhook_id, tenant_id)

    async def delete_webhook(
        self, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        return await webhooks_db.delete(self.conn, webhook_id, tenant_id)

    async def list_deliveries(
        self, webhook_id: uuid.UUID, status: str | None, limit: int
    ) -> list[Row]:
        return list(await webhooks_db.list_deliveries(self.conn, webhook_id, status, limit))

    async def request_replay(self, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> Row | None:
        return await webhooks_db.request_replay(self.conn, webhook_id, delivery_id)

    async def insert_test_delivery(
        self, webhook_id: uuid.UUID, tenant_id: uuid.UUID, event_id: uuid.UUID, body: str
    ) -> Row:
        return await webhooks_db.insert_test(self.conn, webhook_id, tenant_id, event_id, body)

    # lists and the dashboard
    async def list_page(
        self, query: StreamQuery, count_cap: int | None
    ) -> tuple[list[Row], int | None]:
        # The miss path of the cached list: the rows as they are, not copied.
        return cast(
            tuple[list[Row], int | None],
            await stream_list_db.list_page(self.conn, query, count_cap),
        )

    async def dashboard_summary(
        self,
        tenant_id: uuid.UUID | None,
        *,
        count_in_sql: bool,
        failures: int,
        default_max_streams: int,
    ) -> Row:
        row = await dashboard_db.summary(
            self.conn,
            tenant_id,
            count_in_sql=count_in_sql,
            failures=failures,
            default_max_streams=default_max_streams,
        )
        if not count_in_sql:
            return row
        return {**dict(row), "counts": dashboard_db.counts_of(row)}
