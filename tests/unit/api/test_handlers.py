"""The api's handlers through bootstrap.in_memory: every port an in-memory twin
(adapters/memory.py), so the rules of each use case run without a server. The real adapters
are covered by tests/integration/api."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lookout_api import bootstrap, handlers
from lookout_api.adapters.memory import MemoryWorld
from lookout_api.domain.errors import (
    Forbidden,
    ItemErrors,
    NotFound,
    PreconditionFailed,
    TooManyRequests,
    Unauthorized,
)
from lookout_api.domain.listing import Sort, StreamFilter, StreamQuery
from lookout_api.handlers.bulk import BulkItem
from lookout_api.handlers.outbox_writes import probe_commands
from lookout_api.ports import Deps
from lookout_api.settings import ApiSettings
from lookout_shared.tokens import Principal, Role

URL = "rtsp://camera.example/live"
LATER = datetime.now(UTC) + timedelta(hours=1)


@dataclass
class World:
    deps: Deps
    twins: MemoryWorld
    tenant: uuid.UUID

    def principal(self, role: Role, tenant: uuid.UUID | None = None) -> Principal:
        return Principal(uuid.uuid4(), tenant or self.tenant, role, LATER)

    def events(self) -> list[str]:
        return self.twins.tables.event_types()


def world(**settings: Any) -> World:
    twins = MemoryWorld()
    deps = bootstrap.in_memory(ApiSettings(**settings), twins)
    return World(deps, twins, twins.tables.add_tenant("acme")["id"])


async def create(w: World, name: str = "cam", tenant: uuid.UUID | None = None) -> Any:
    operator = w.principal("operator", tenant)
    return await handlers.create_stream(
        w.deps, operator, name=name, url=URL, tags=["lobby"], enabled=True
    )


async def test_creating_a_stream_commits_its_audit_entry_and_events_with_the_row() -> None:
    w = world()
    row = await create(w)
    assert w.twins.tables.streams[row["id"]]["name"] == "cam"
    assert w.events() == ["stream.created", "stream.probe"]
    assert [a["action"] for a in w.twins.tables.audit] == ["stream.created"]
    assert w.twins.cache.invalidated == [w.tenant]  # cached reads of the tenant go stale


async def test_a_viewer_cannot_create_a_stream_and_nothing_is_written() -> None:
    w = world()
    with pytest.raises(Forbidden):
        await handlers.create_stream(
            w.deps, w.principal("viewer"), name="cam", url=URL, tags=[], enabled=True
        )
    assert not w.twins.tables.streams and not w.events()


async def test_an_update_at_a_stale_version_fails_and_changes_nothing() -> None:
    w = world()
    row = await create(w)
    operator = w.principal("operator")
    updated = await handlers.update_stream(w.deps, operator, row["id"], {"name": "new"}, 1)
    assert (updated["name"], updated["version"]) == ("new", 2)
    with pytest.raises(PreconditionFailed):
        await handlers.update_stream(w.deps, operator, row["id"], {"name": "newer"}, 1)
    assert w.twins.tables.streams[row["id"]]["name"] == "new"
    assert w.events() == ["stream.created", "stream.probe", "stream.updated"]


async def test_deleting_a_stream_fails_its_jobs_and_deletes_its_snapshots_in_events() -> None:
    w = world()
    row = await create(w)
    await handlers.request_snapshot(w.deps, w.principal("operator"), row["id"])
    w.twins.tables.add_snapshot(row["id"])
    await handlers.delete_stream(w.deps, w.principal("operator"), row["id"], None)
    assert row["id"] not in w.twins.tables.streams
    assert w.events()[-3:] == ["stream.deleted", "snapshot_job.failed", "snapshot.deleted"]
    deleted = w.twins.tables.outbox[-3]
    assert deleted.entity_version == row["version"] + 1  # ordered after every update


async def test_another_tenants_stream_is_not_found_on_every_path() -> None:
    w = world()
    row = await create(w)
    other = w.twins.tables.add_tenant("other")["id"]
    stranger = w.principal("admin", other)
    with pytest.raises(NotFound):
        await handlers.get_stream(w.deps, stranger, row["id"])
    with pytest.raises(NotFound):
        await handlers.update_stream(w.deps, stranger, row["id"], {"name": "x"}, None)
    with pytest.raises(NotFound):
        await handlers.delete_stream(w.deps, stranger, row["id"], None)
    with pytest.raises(NotFound):
        await handlers.request_snapshot(w.deps, stranger, row["id"])
    query = StreamQuery(StreamFilter(None), Sort("name", False), limit=10)
    assert (await handlers.list_streams(w.deps, stranger, query)).rows == []
    assert row["id"] in w.twins.tables.streams


async def test_the_stream_quota_refuses_one_more_and_rolls_the_transaction_back() -> None:
    w = world(default_max_streams=1)
    await create(w, "one")
    with pytest.raises(Forbidden):
        await create(w, "two")
    assert [s["name"] for s in w.twins.tables.streams.values()] == ["one"]
    assert w.events() == ["stream.created", "stream.probe"]


async def test_a_bulk_write_with_one_bad_item_writes_nothing() -> None:
    w = world()
    row = await create(w)
    items = [
        BulkItem(None, {"name": "new", "url": URL}),
        BulkItem(row["id"], {"name": "renamed"}, expected_version=7),
    ]
    with pytest.raises(ItemErrors):
        await handlers.bulk_upsert(w.deps, w.principal("operator"), items, None)
    assert len(w.twins.tables.streams) == 1 and w.events() == ["stream.created", "stream.probe"]


async def test_a_bulk_create_outboxes_its_events_ahead_of_its_probe_commands() -> None:
    w = world()
    items = [BulkItem(None, {"name": f"cam{i}", "url": URL}) for i in range(3)]
    await handlers.bulk_upsert(w.deps, w.principal("operator"), items, None)
    assert w.events() == ["stream.created"] * 3 + ["stream.probe"]
    created = [e.entity_id for e in w.twins.tables.outbox if e.type == "stream.created"]
    [probe] = [e for e in w.twins.tables.outbox if e.type == "stream.probe"]
    assert probe.data["stream_ids"] == [str(i) for i in created]  # one command, in item order


def test_a_probe_command_never_carries_streams_of_two_tenants() -> None:
    rows = [{"id": uuid.uuid4(), "tenant_id": uuid.uuid4(), "version": 1} for _ in range(2)]
    with pytest.raises(ValueError, match="streams of one tenant"):
        probe_commands(rows)


async def test_a_snapshot_request_queues_one_job_and_joins_it_after() -> None:
    w = world()
    row = await create(w)
    operator = w.principal("operator")
    first = await handlers.request_snapshot(w.deps, operator, row["id"])
    assert first.created and first.job is not None and first.snapshot is None
    assert w.events()[-2:] == ["snapshot.capture", "snapshot_job.queued"]
    second = await handlers.request_snapshot(w.deps, operator, row["id"])
    assert not second.created and second.job is not None
    assert second.job["id"] == first.job["id"]
    assert w.events().count("snapshot.capture") == 1


async def test_a_fresh_snapshot_answers_without_a_job() -> None:
    w = world()
    row = await create(w)
    snapshot = w.twins.tables.add_snapshot(row["id"])
    found = await handlers.request_snapshot(w.deps, w.principal("operator"), row["id"], 60)
    assert found.snapshot is not None and found.snapshot["id"] == snapshot["id"]
    assert not w.twins.tables.jobs


async def test_the_snapshot_rate_quota_answers_429_and_fails_open_without_redis() -> None:
    w = world(default_snapshot_requests_per_minute=1)
    row = await create(w)
    operator = w.principal("operator")
    await handlers.request_snapshot(w.deps, operator, row["id"])
    with pytest.raises(TooManyRequests):
        await handlers.request_snapshot(w.deps, operator, row["id"])
    w.twins.redis.down = True
    joined = await handlers.request_snapshot(w.deps, operator, row["id"])
    assert joined.job is not None


async def test_counts_come_from_redis_and_from_sql_when_it_is_down() -> None:
    w = world()
    await create(w)
    viewer = w.principal("viewer")
    read = await handlers.counts(w.deps, viewer)
    assert (read.source, read.degraded, read.values["streams_total"]) == ("counts", False, 1)
    w.twins.counts.unseen.add(w.tenant)  # no hash yet: counted in SQL, not degraded
    read = await handlers.counts(w.deps, viewer)
    assert (read.source, read.degraded, read.values["streams_total"]) == ("sql", False, 1)
    w.twins.redis.down = True
    read = await handlers.counts(w.deps, viewer)
    assert (read.source, read.degraded, read.values["streams_total"]) == ("sql", True, 1)


async def test_the_dashboard_reports_counts_queues_health_and_quota_usage() -> None:
    w = world()
    await create(w)
    w.twins.queues.depths = {"snapshot.capture": 3}
    viewer = w.principal("viewer")
    board = await handlers.dashboard(w.deps, viewer)
    assert (board.counts_source, board.counts["streams_total"]) == ("counts", 1)
    assert board.queue_depths == {"snapshot.capture": 3}
    assert board.health == {"postgres": True, "redis": True, "rabbitmq": True}
    assert board.quota_usage is not None and board.quota_usage.streams_used == 1
    w.twins.redis.down = True
    w.twins.queues.depths = None
    w.deps.broker_state = None  # the kept depths would answer for a second
    board = await handlers.dashboard(w.deps, viewer)
    assert (board.counts_source, board.counts["streams_total"]) == ("sql", 1)
    assert board.health == {"postgres": True, "redis": False, "rabbitmq": False}
    with pytest.raises(NotFound):
        await handlers.dashboard(w.deps, viewer, tenant_id=uuid.uuid4())


async def test_quotas_are_set_by_superusers_and_read_by_the_tenants_admin() -> None:
    w = world()
    root = Principal(uuid.uuid4(), None, "superuser", LATER)
    with pytest.raises(Forbidden):
        await handlers.set_quotas(w.deps, w.principal("admin"), w.tenant, {"max_streams": 5})
    usage = await handlers.set_quotas(w.deps, root, w.tenant, {"max_streams": 5})
    assert usage.quotas.max_streams == 5
    assert [a["action"] for a in w.twins.tables.audit] == ["tenant.quotas_updated"]
    read = await handlers.get_quota_usage(w.deps, w.principal("admin"), w.tenant)
    assert read.quotas.max_streams == 5
    with pytest.raises(NotFound):  # another tenant's admin
        await handlers.get_quota_usage(w.deps, w.principal("admin", uuid.uuid4()), w.tenant)


async def test_a_revoked_api_key_is_refused_at_once() -> None:
    w = world()
    user = await handlers.create_user(w.deps, None, "a@example.com", "x" * 12, "admin", w.tenant)
    admin = Principal(user["id"], w.tenant, "admin", LATER)
    row, secret = await handlers.create_api_key(w.deps, admin, "ci", "viewer", None)
    assert (await handlers.authenticate(w.deps, secret)).tenant_id == w.tenant
    await handlers.revoke_api_key(w.deps, admin, row["id"])
    with pytest.raises(Unauthorized):
        await handlers.authenticate(w.deps, secret)


async def test_login_issues_a_token_and_is_limited_per_address() -> None:
    w = world(login_ip_limit=2)
    await handlers.create_user(w.deps, None, "a@example.com", "x" * 12, "viewer", w.tenant)
    token, _ = await handlers.login(w.deps, "a@example.com", "x" * 12, "127.0.0.1")
    assert w.deps.codec.verify(token).tenant_id == w.tenant
    with pytest.raises(Unauthorized):
        await handlers.login(w.deps, "a@example.com", "wrong-password", "127.0.0.1")
    with pytest.raises(TooManyRequests):
        await handlers.login(w.deps, "a@example.com", "x" * 12, "127.0.0.1")
    w.twins.redis.down = True  # fails open: argon2's cost still slows guessing
    await handlers.login(w.deps, "a@example.com", "x" * 12, "127.0.0.1")
