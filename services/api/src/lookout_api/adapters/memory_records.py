"""The in-memory twin's API keys, audit log, outbox, snapshots, webhooks, stream pages and
dashboard summary (a mixin of memory_db.MemorySession, over the same tables)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from lookout_shared.envelope import Envelope

from lookout_api.adapters.memory_tables import Tables, count_rows, in_scope, now, scoped
from lookout_api.domain.audit import Entry
from lookout_api.domain.listing import StreamQuery
from lookout_api.ports import Actor, MissingReference, Row

ROLES = ("viewer", "operator", "admin", "superuser")
KEY_COLUMNS = (
    "id",
    "tenant_id",
    "created_by",
    "name",
    "role",
    "prefix",
    "created_at",
    "revoked_at",
)
HOOK_COLUMNS = ("id", "tenant_id", "url", "events", "created_at", "disabled")


class RecordsTwin:
    t: Tables

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
        if tenant_id not in self.t.tenants:
            raise MissingReference("api_keys.tenant_id")
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "tenant_id": tenant_id, "created_by": created_by, "name": name,
            "role": role, "prefix": prefix, "created_at": now(), "revoked_at": None,
            "secret_hash": secret_hash,
        }  # fmt: skip
        self.t.api_keys[row["id"]] = row
        return {k: row[k] for k in KEY_COLUMNS}

    def _live(self, key: dict[str, Any]) -> bool:
        user = self.t.users.get(key["created_by"])
        return (
            key["revoked_at"] is None
            and user is not None
            and not user["disabled_at"]
            and (user["role"] == "superuser" or user["tenant_id"] == key["tenant_id"])
            and ROLES.index(user["role"]) >= ROLES.index(key["role"])
        )

    async def active_key(self, secret_hash: bytes) -> Row | None:
        found = [k for k in self.t.api_keys.values() if k["secret_hash"] == secret_hash]
        return {c: found[0][c] for c in KEY_COLUMNS} if found and self._live(found[0]) else None

    async def key_is_live(self, key_id: uuid.UUID) -> bool:
        key = self.t.api_keys.get(key_id)
        return key is not None and self._live(key)

    async def list_keys(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        rows = in_scope(self.t.api_keys, tenant_id)[::-1][:limit]
        return [{c: r[c] for c in KEY_COLUMNS} for r in rows]

    async def revoke_key(self, key_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        if scoped(self.t.api_keys.get(key_id), tenant_id) is None:
            return None
        key = self.t.api_keys[key_id]
        key["revoked_at"] = key["revoked_at"] or now()
        return dict(key)

    # audit and outbox
    async def record_audit(self, actor: Actor, entries: Sequence[Entry]) -> None:
        kind, actor_id, key_id = actor
        for e in entries:
            self.t.audit.append(
                {
                    "id": len(self.t.audit) + 1, "tenant_id": e.tenant_id, "actor_id": actor_id,
                    "actor_kind": kind, "api_key_id": key_id, "action": e.action,
                    "entity_type": e.entity_type, "entity_id": e.entity_id,
                    "changes": e.changes, "created_at": now(),
                }
            )  # fmt: skip

    async def list_audit(
        self,
        tenant_id: uuid.UUID | None,
        limit: int,
        before_id: int | None,
        entity_id: uuid.UUID | None,
    ) -> list[Row]:
        rows = [
            dict(a)
            for a in reversed(self.t.audit)
            if (tenant_id is None or a["tenant_id"] == tenant_id)
            and (before_id is None or a["id"] < before_id)
            and (entity_id is None or a["entity_id"] == entity_id)
        ]
        return list(rows[:limit])

    async def enqueue(self, *envelopes: Envelope) -> None:
        self.t.outbox.extend(envelopes)

    # snapshots and jobs
    async def stream_for_request(
        self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        stream = scoped(self.t.streams.get(stream_id), tenant_id)
        if stream is None:
            return None
        tenant = self.t.tenants[stream["tenant_id"]]
        quotas = ("max_streams", "snapshot_requests_per_minute", "max_hot_streams")
        return {
            **{k: stream[k] for k in ("id", "tenant_id", "enabled")},
            **{q: tenant[q] for q in quotas},
        }

    async def fresh_snapshot(self, stream_id: uuid.UUID, max_age_seconds: int) -> Row | None:
        since = now() - timedelta(seconds=max_age_seconds)
        fresh = [
            s
            for s in self.t.snapshots.values()
            if s["stream_id"] == stream_id and s["created_at"] >= since
        ]
        return dict(max(fresh, key=lambda s: s["created_at"])) if fresh else None

    async def insert_job_or_join(
        self, tenant_id: uuid.UUID, stream_id: uuid.UUID
    ) -> tuple[Row, bool]:
        if stream_id not in self.t.streams:
            raise MissingReference("snapshot_jobs.stream_id")
        for active in self.t.jobs.values():
            if active["stream_id"] == stream_id and active["status"] in ("queued", "running"):
                return dict(active), False
        job: dict[str, Any] = {
            "id": uuid.uuid4(), "tenant_id": tenant_id, "stream_id": stream_id,
            "status": "queued", "attempts": 0, "error": None, "error_category": None,
            "snapshot_id": None, "version": 1, "created_at": now(), "started_at": None,
            "finished_at": None,
        }  # fmt: skip
        self.t.jobs[job["id"]] = job
        return dict(job), True

    async def get_job(self, job_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return scoped(self.t.jobs.get(job_id), tenant_id)

    async def get_snapshot(self, snapshot_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return scoped(self.t.snapshots.get(snapshot_id), tenant_id)

    async def latest_snapshot(
        self, stream_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        rows = [s for s in in_scope(self.t.snapshots, tenant_id) if s["stream_id"] == stream_id]
        return max(rows, key=lambda s: (s["created_at"], s["id"])) if rows else None

    async def list_snapshots(
        self, stream_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Row]:
        rows = sorted(
            (s for s in self.t.snapshots.values() if s["stream_id"] == stream_id),
            key=lambda s: (s["created_at"], s["id"]),
            reverse=True,
        )
        if after is not None:
            rows = [s for s in rows if (s["created_at"], s["id"]) < after]
        return [dict(s) for s in rows[:limit]]

    # webhooks
    async def insert_webhook(
        self, tenant_id: uuid.UUID, url: str, events: list[str], sealed: bytes
    ) -> Row:
        if tenant_id not in self.t.tenants:
            raise MissingReference("webhooks.tenant_id")
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "tenant_id": tenant_id, "url": url, "events": events,
            "created_at": now(), "disabled": False, "secret": sealed,
        }  # fmt: skip
        self.t.webhooks[row["id"]] = row
        return {c: row[c] for c in HOOK_COLUMNS}

    async def list_webhooks(self, tenant_id: uuid.UUID | None, limit: int) -> list[Row]:
        return [
            {c: r[c] for c in HOOK_COLUMNS} for r in in_scope(self.t.webhooks, tenant_id)[:limit]
        ]

    async def get_webhook(self, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Row | None:
        return scoped(self.t.webhooks.get(webhook_id), tenant_id)

    async def delete_webhook(
        self, webhook_id: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> Row | None:
        row = scoped(self.t.webhooks.get(webhook_id), tenant_id)
        if row is None:
            return None
        del self.t.webhooks[webhook_id]
        return {"id": row["id"], "tenant_id": row["tenant_id"]}

    async def list_deliveries(
        self, webhook_id: uuid.UUID, status: str | None, limit: int
    ) -> list[Row]:
        rows = [
            dict(d)
            for d in self.t.deliveries.values()
            if d["webhook_id"] == webhook_id and (status is None or d["status"] == status)
        ]
        return list(rows[:limit])

    async def request_replay(self, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> Row | None:
        row = self.t.deliveries.get(delivery_id)
        if (
            row is None
            or row["webhook_id"] != webhook_id
            or row["status"] not in ("failed", "delivered")
        ):
            return None
        row.update(status="pending", updated_at=now())
        return dict(row)

    async def insert_test_delivery(
        self, webhook_id: uuid.UUID, tenant_id: uuid.UUID, event_id: uuid.UUID, body: str
    ) -> Row:
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "webhook_id": webhook_id, "event_id": event_id,
            "event_type": "webhook.test", "status": "pending", "attempts": 0,
            "last_error": None, "created_at": now(), "updated_at": now(),
        }  # fmt: skip
        self.t.deliveries[row["id"]] = row
        return dict(row)

    # the stream list and the dashboard
    async def list_page(
        self, query: StreamQuery, count_cap: int | None
    ) -> tuple[list[Row], int | None]:
        f = query.filter
        rows = [
            s
            for s in in_scope(self.t.streams, f.tenant_id)
            if (f.status is None or s["status"] == f.status)
            and (f.kind is None or s["kind"] == f.kind)
            and (f.tag is None or f.tag in s["tags"])
            and (f.q is None or f.q.lower() in s["name"].lower())
        ]
        rows.sort(key=lambda s: (s[query.sort.key], s["id"]), reverse=query.sort.descending)
        total = None if count_cap is None else min(len(rows), count_cap + 1)
        page: list[Row] = list(rows[query.offset : query.offset + query.limit])
        return page, total

    async def dashboard_summary(
        self,
        tenant_id: uuid.UUID | None,
        *,
        count_in_sql: bool,
        failures: int,
        default_max_streams: int,
    ) -> Row:
        tenant = self.t.tenants.get(tenant_id) if tenant_id is not None else None
        failed = [j for j in in_scope(self.t.jobs, tenant_id) if j["status"] == "failed"]
        errors = [s for s in in_scope(self.t.streams, tenant_id) if s["status"] == "error"]
        row: dict[str, Any] = {
            "failed_jobs": failed[::-1][:failures],
            "error_streams": errors[::-1][:failures],
            "outbox_unpublished": len(self.t.outbox),
            "outbox_oldest_age": None,
            "tenant_found": tenant is not None,
            "streams_used": len(in_scope(self.t.streams, tenant_id)) if tenant else 0,
        }
        for quota in ("max_streams", "snapshot_requests_per_minute", "max_hot_streams"):
            row[quota] = tenant[quota] if tenant else None
        if count_in_sql:
            row["counts"] = count_rows(self.t, tenant_id)
        return row
