"""The tables of the in-memory database twin (memory_db.py): rows as dicts, in insert order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lookout_shared.count_rules import job_fields, snapshot_fields, stream_fields
from lookout_shared.envelope import Envelope

Table = dict[uuid.UUID, dict[str, Any]]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tables:
    tenants: Table = field(default_factory=dict)
    users: Table = field(default_factory=dict)
    streams: Table = field(default_factory=dict)
    jobs: Table = field(default_factory=dict)
    snapshots: Table = field(default_factory=dict)
    api_keys: Table = field(default_factory=dict)
    webhooks: Table = field(default_factory=dict)
    deliveries: Table = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    # Messages "committed" with the writes, in order (the outbox).
    outbox: list[Envelope] = field(default_factory=list)

    def add_tenant(self, name: str, **quotas: int | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "name": name,
            "created_at": now(),
            "max_streams": None,
            "snapshot_requests_per_minute": None,
            "max_hot_streams": None,
            **quotas,
        }
        self.tenants[row["id"]] = row
        return row

    def add_snapshot(
        self, stream_id: uuid.UUID, created_at: datetime | None = None
    ) -> dict[str, Any]:
        """A stored snapshot of ``stream_id`` (as the worker writes one)."""
        stream = self.streams[stream_id]
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "tenant_id": stream["tenant_id"],
            "stream_id": stream_id,
            "job_id": None,
            "storage_key": f"{uuid.uuid4().hex}.jpg",
            "content_type": "image/jpeg",
            "size_bytes": 0,
            "sha256": "",
            "width": 4,
            "height": 2,
            "created_at": created_at or now(),
        }
        self.snapshots[row["id"]] = row
        return row

    def event_types(self) -> list[str]:
        return [e.type for e in self.outbox]


def scoped(row: dict[str, Any] | None, tenant_id: uuid.UUID | None) -> dict[str, Any] | None:
    """``row`` if it belongs to ``tenant_id`` (None: any tenant), as the SQL filters it."""
    if row is None or (tenant_id is not None and row["tenant_id"] != tenant_id):
        return None
    return dict(row)


def in_scope(table: Table, tenant_id: uuid.UUID | None) -> list[dict[str, Any]]:
    return [dict(r) for r in table.values() if tenant_id is None or r["tenant_id"] == tenant_id]


def count_rows(t: Tables, tenant_id: uuid.UUID | None) -> dict[str, int]:
    """The scope's counts by the aggregator's rules (zeros left out)."""
    tally: dict[str, int] = {}
    fields = [
        stream_fields(s["status"], s["kind"], s["height"], s["tags"])
        for s in in_scope(t.streams, tenant_id)
    ]
    fields += [job_fields(j["status"]) for j in in_scope(t.jobs, tenant_id)]
    fields += [snapshot_fields() for _ in in_scope(t.snapshots, tenant_id)]
    for names in fields:
        for name in names:
            tally[name] = tally.get(name, 0) + 1
    return tally
