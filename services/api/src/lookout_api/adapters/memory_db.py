"""The in-memory twin of ports.Database: streams, tenants, users and quotas here, the rest in
memory_records.py. A transaction that ends with an exception leaves the tables as they were."""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from lookout_api.adapters.memory_records import RecordsTwin
from lookout_api.adapters.memory_tables import Tables, count_rows, in_scope, now, scoped
from lookout_api.domain.streams import CHANGEABLE
from lookout_api.ports import Row

QUOTAS = ("max_streams", "snapshot_requests_per_minute", "max_hot_streams")


class MemoryDatabase:
    def __init__(self, tables: Tables | None = None) -> None:
        self.tables = tables or Tables()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[MemorySession]:
        yield MemorySession(self.tables)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemorySession]:
        session = MemorySession(self.tables)
        async with session.transaction():
            yield session

    async def count_in_sql(self, tenant_id: uuid.UUID | None) -> dict[str, int]:
        return count_rows(self.tables, tenant_id)


class MemorySession(RecordsTwin):
    def __init__(self, tables: Tables) -> None:
        self.t = tables

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        kept = copy.deepcopy(self.t.__dict__)
        try:
            yield
        except BaseException:
            self.t.__dict__.update(kept)
            raise

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._transaction()

    # streams
    async def get_stream(self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return scoped(self.t.streams.get(stream_id), tenant_id)

    async def lock_streams(
        self, stream_ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None
    ) -> list[Row]:
        found = (scoped(self.t.streams.get(i), tenant_id) for i in sorted(set(stream_ids)))
        return [r for r in found if r is not None]

    async def insert_streams(
        self, tenant_id: uuid.UUID, values: Sequence[dict[str, Any]]
    ) -> list[Row]:
        rows: list[Row] = []
        for v in values:
            row: dict[str, Any] = {
                "id": uuid.uuid4(), "tenant_id": tenant_id, **v, "last_error": None,
                "last_error_category": None, "width": None, "height": None, "codec": None,
                "hot": False, "hot_mode": "keyframes", "version": 1,
                "created_at": now(), "updated_at": now(),
            }  # fmt: skip
            self.t.streams[row["id"]] = row
            rows.append(dict(row))
        return rows

    async def update_streams(
        self, updates: Sequence[tuple[uuid.UUID, int, dict[str, Any]]]
    ) -> list[Row]:
        rows: list[Row] = []
        for stream_id, version, values in updates:
            row = self.t.streams.get(stream_id)
            if row is None or row["version"] != version:
                continue
            row.update({c: values[c] for c in CHANGEABLE})
            row.update(version=version + 1, updated_at=now())
            rows.append(dict(row))
        return rows

    async def fail_active_jobs(self, stream_id: uuid.UUID) -> list[Row]:
        failed: list[Row] = []
        for job in self.t.jobs.values():
            if job["stream_id"] == stream_id and job["status"] in ("queued", "running"):
                job.update(status="failed", error="stream deleted", finished_at=now())
                job.update(error_category="stream_deleted", version=job["version"] + 1)
                failed.append(dict(job))
        return failed

    async def snapshots_of(self, stream_id: uuid.UUID) -> list[Row]:
        return [dict(s) for s in self.t.snapshots.values() if s["stream_id"] == stream_id]

    async def delete_stream(self, stream_id: uuid.UUID, version: int) -> bool:
        row = self.t.streams.get(stream_id)
        if row is None or row["version"] != version:
            return False
        del self.t.streams[stream_id]
        for table in (self.t.jobs, self.t.snapshots):  # ON DELETE CASCADE
            for key in [k for k, r in table.items() if r["stream_id"] == stream_id]:
                del table[key]
        return True

    # tenants and users
    async def insert_tenant(self, name: str) -> Row | None:
        if any(t["name"].lower() == name.lower() for t in self.t.tenants.values()):
            return None
        return dict(self.t.add_tenant(name))

    async def tenant_by_name(self, name: str) -> Row | None:
        found = [t for t in self.t.tenants.values() if t["name"].lower() == name.lower()]
        return dict(found[0]) if found else None

    async def tenant_exists(self, tenant_id: uuid.UUID) -> bool:
        return tenant_id in self.t.tenants

    async def insert_user(
        self, tenant_id: uuid.UUID | None, email: str, password_hash: str, role: str
    ) -> Row | None:
        if any(u["email"] == email for u in self.t.users.values()):
            return None
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "tenant_id": tenant_id, "email": email, "role": role,
            "created_at": now(), "password_hash": password_hash, "token_version": 1,
            "disabled_at": None,
        }  # fmt: skip
        self.t.users[row["id"]] = row
        return _user(row)

    async def user_for_login(self, email: str) -> Row | None:
        found = [u for u in self.t.users.values() if u["email"] == email and not u["disabled_at"]]
        return dict(found[0]) if found else None

    async def user_standing(self, user_id: uuid.UUID) -> Row | None:
        row = self.t.users.get(user_id)
        if row is None or row["disabled_at"]:
            return None
        return {k: row[k] for k in ("role", "tenant_id", "token_version")}

    async def user_by_id(self, user_id: uuid.UUID) -> Row | None:
        row = self.t.users.get(user_id)
        return None if row is None else _user(row)

    async def delete_user(self, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        row = scoped(self.t.users.get(user_id), tenant_id)
        if row is not None:
            del self.t.users[user_id]
        return row

    async def list_users(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        rows = [
            u for u in self.t.users.values() if tenant_id is None or u["tenant_id"] == tenant_id
        ]
        return [_user(u) for u in rows[:limit]]

    # quotas
    async def get_quotas(self, tenant_id: uuid.UUID) -> Row | None:
        row = self.t.tenants.get(tenant_id)
        return None if row is None else {k: row[k] for k in ("id", *QUOTAS)}

    async def lock_quotas(self, tenant_id: uuid.UUID) -> Row | None:
        return await self.get_quotas(tenant_id)

    async def count_streams(self, tenant_id: uuid.UUID, up_to: int) -> int:
        return min(up_to, len(in_scope(self.t.streams, tenant_id)))

    async def count_hot_streams(self, tenant_id: uuid.UUID, up_to: int) -> int:
        return min(up_to, sum(1 for s in in_scope(self.t.streams, tenant_id) if s["hot"]))

    async def set_quotas(self, tenant_id: uuid.UUID, values: dict[str, int | None]) -> Row | None:
        row = self.t.tenants.get(tenant_id)
        if row is not None:
            row.update({c: values[c] for c in QUOTAS if c in values})
        return await self.get_quotas(tenant_id)


def _user(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "tenant_id", "email", "role", "created_at")}
