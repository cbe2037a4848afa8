"""What the handlers need from the outside world. adapters/ implements each port against
Postgres, Redis and RabbitMQ; adapters/memory.py has an in-memory twin of each for unit tests.

Rows come back as :class:`Row` (a record or a dict alike). Every Redis port fails the same
way: :class:`RedisUnavailable` once the one breaker (adapters/breaker.py) says Redis failed,
was too slow, or failed a moment ago.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from lookout_shared.drift_report import DriftReport
from lookout_shared.envelope import Envelope
from lookout_shared.hot_frames import HotFrame
from lookout_shared.storage import SnapshotStorage
from lookout_shared.tokens import TokenCodec

from lookout_api.domain.audit import Entry
from lookout_api.domain.frames import Encoded, FrameRequest
from lookout_api.domain.listing import StreamQuery
from lookout_api.settings import ApiSettings

T = TypeVar("T")
Id = uuid.UUID
Scope = uuid.UUID | None  # a tenant; None: every tenant (a superuser)
Actor = tuple[str, Scope, Scope]  # (kind, user id, API key id)


class Row(Protocol):
    """A stored row: a database record or a dict alike (``dict(row)`` copies it)."""

    def __getitem__(self, key: str, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...


class RedisUnavailable(Exception):
    """Redis failed, was too slow, or is skipped because it failed a moment ago."""

    def __init__(self, reason: str, *, skipped: bool = False) -> None:
        super().__init__(reason)
        self.skipped = skipped


class MissingReference(Exception):
    """A write named a row (a tenant, a stream) that is gone; nothing was written."""


class UndecodableFrame(Exception):
    """A frame's bytes are no image the encoder can read (the cause is chained)."""


# --- Postgres: one connection's (or one transaction's) view --------------------------


class StreamStore(Protocol):
    async def get_stream(self, stream_id: Id, tenant_id: Scope) -> Row | None: ...
    # The streams, locked until the transaction ends (in id order: no deadlock).
    async def lock_streams(self, stream_ids: Sequence[Id], tenant_id: Scope) -> list[Row]: ...
    async def insert_streams(
        self, tenant_id: Id, values: Sequence[dict[str, Any]]
    ) -> list[Row]: ...
    # (id, expected version, values) each; the rows as they are after the change.
    async def update_streams(
        self, updates: Sequence[tuple[Id, int, dict[str, Any]]]
    ) -> list[Row]: ...
    async def fail_active_jobs(self, stream_id: Id) -> list[Row]: ...
    async def snapshots_of(self, stream_id: Id) -> list[Row]: ...
    async def delete_stream(self, stream_id: Id, version: int) -> bool: ...


class TenancyStore(Protocol):
    # The new tenant; None when the name is taken.
    async def insert_tenant(self, name: str) -> Row | None: ...
    async def tenant_by_name(self, name: str) -> Row | None: ...
    async def tenant_exists(self, tenant_id: Id) -> bool: ...
    # The new user; None when the e-mail is taken.
    async def insert_user(
        self, tenant_id: Scope, email: str, password_hash: str, role: str
    ) -> Row | None: ...
    async def user_for_login(self, email: str) -> Row | None: ...
    async def user_standing(self, user_id: Id) -> Row | None: ...
    async def user_by_id(self, user_id: Id) -> Row | None: ...
    async def delete_user(self, user_id: Id, tenant_id: Scope) -> Row | None: ...
    async def list_users(self, tenant_id: Scope, limit: int) -> list[Row]: ...


class QuotaStore(Protocol):
    async def get_quotas(self, tenant_id: Id) -> Row | None: ...
    # The tenant's quota columns, its row locked until the transaction ends.
    async def lock_quotas(self, tenant_id: Id) -> Row | None: ...
    async def count_streams(self, tenant_id: Id, up_to: int) -> int: ...
    async def count_hot_streams(self, tenant_id: Id, up_to: int) -> int: ...
    async def set_quotas(self, tenant_id: Id, values: dict[str, int | None]) -> Row | None: ...


class ApiKeyStore(Protocol):
    # Raises MissingReference when the tenant is gone.
    async def insert_key(
        self, tenant_id: Id, created_by: Id, name: str, role: str, prefix: str, secret_hash: bytes
    ) -> Row: ...
    async def active_key(self, secret_hash: bytes) -> Row | None: ...
    async def key_is_live(self, key_id: Id) -> bool: ...
    async def list_keys(self, tenant_id: Scope, limit: int) -> list[Row]: ...
    async def revoke_key(self, key_id: Id, tenant_id: Scope) -> Row | None: ...


class AuditLog(Protocol):
    async def record_audit(self, actor: Actor, entries: Sequence[Entry]) -> None: ...
    async def list_audit(
        self, tenant_id: Scope, limit: int, before_id: int | None, entity_id: Scope
    ) -> list[Row]: ...


class Outbox(Protocol):
    # Queue messages for the relay, on the caller's transaction.
    async def enqueue(self, *envelopes: Envelope) -> None: ...


class SnapshotStore(Protocol):
    async def stream_for_request(self, stream_id: Id, tenant_id: Scope) -> Row | None: ...
    async def fresh_snapshot(self, stream_id: Id, max_age_seconds: int) -> Row | None: ...
    # (the stream's active job, whether it is new); MissingReference without the stream.
    async def insert_job_or_join(self, tenant_id: Id, stream_id: Id) -> tuple[Row, bool]: ...
    async def get_job(self, job_id: Id, tenant_id: Scope) -> Row | None: ...
    async def get_snapshot(self, snapshot_id: Id, tenant_id: Scope) -> Row | None: ...
    async def latest_snapshot(self, stream_id: Id, tenant_id: Scope) -> Row | None: ...
    async def list_snapshots(
        self, stream_id: Id, limit: int, after: tuple[datetime, Id] | None
    ) -> list[Row]: ...


class WebhookStore(Protocol):
    # Raises MissingReference when the tenant is gone.
    async def insert_webhook(
        self, tenant_id: Id, url: str, events: list[str], sealed: bytes
    ) -> Row: ...
    async def list_webhooks(self, tenant_id: Scope, limit: int) -> list[Row]: ...
    async def get_webhook(self, webhook_id: Id, tenant_id: Scope) -> Row | None: ...
    async def delete_webhook(self, webhook_id: Id, tenant_id: Scope) -> Row | None: ...
    async def list_deliveries(
        self, webhook_id: Id, status: str | None, limit: int
    ) -> list[Row]: ...
    async def request_replay(self, webhook_id: Id, delivery_id: Id) -> Row | None: ...
    async def insert_test_delivery(
        self, webhook_id: Id, tenant_id: Id, event_id: Id, body: str
    ) -> Row: ...


class StreamPages(Protocol):
    # One page, and (with a cap) the matching rows counted up to ``count_cap + 1``.
    async def list_page(
        self, query: StreamQuery, count_cap: int | None
    ) -> tuple[list[Row], int | None]: ...


class DashboardSummary(Protocol):
    # One statement: failures, outbox backlog, quota columns, and (``count_in_sql``) the
    # counts under "counts".
    async def dashboard_summary(
        self, tenant_id: Scope, *, count_in_sql: bool, failures: int, default_max_streams: int
    ) -> Row: ...


class Session(
    StreamStore,
    TenancyStore,
    QuotaStore,
    ApiKeyStore,
    AuditLog,
    Outbox,
    SnapshotStore,
    WebhookStore,
    StreamPages,
    DashboardSummary,
    Protocol,
):
    """One connection: each statement commits on its own unless inside :meth:`transaction`."""

    # Everything written inside commits together, or (on an exception) not at all.
    def transaction(self) -> AbstractAsyncContextManager[None]: ...


class Database(Protocol):
    def connect(self) -> AbstractAsyncContextManager[Session]: ...
    # A session whose writes commit together when the block ends without an exception.
    def transaction(self) -> AbstractAsyncContextManager[Session]: ...
    # The scope's counts by the aggregator's rules, counted in SQL.
    async def count_in_sql(self, tenant_id: Scope) -> dict[str, int]: ...


# --- Redis (each behind the breaker) ---------------------------------------------------


class StreamCache(Protocol):
    # Make every cached read of these tenants stale (after their write committed).
    async def invalidate(self, tenant_ids: Sequence[Id]) -> None: ...


@dataclass(frozen=True)
class DashboardValues:
    counts: dict[str, int]  # empty: none for the scope, or not trusted
    snapshot_requests: int | None  # this minute's, for a tenant scope
    drift: DriftReport | None


class CountsReader(Protocol):
    # The scope's counts ({} when it has none), or None when they are not trusted.
    async def counts(self, tenant_id: Scope) -> dict[str, int] | None: ...
    # (the counts epoch, the fields' values), or None when the counts are not trusted.
    async def fields(
        self, tenant_id: Scope, *names: str
    ) -> tuple[str, list[int | None]] | None: ...
    # Counts, the snapshot requests this minute and the last drift check, at once.
    async def dashboard(self, tenant_id: Scope) -> DashboardValues: ...


class RateCounters(Protocol):
    """Fixed-window counters shared by every api process; a key is a tuple of names."""

    # Count one event: (events in the window, seconds until it ends).
    async def hit(self, key: tuple[object, ...], window: int) -> tuple[int, int]: ...
    async def current(self, key: tuple[object, ...]) -> tuple[int, int]: ...


class HotFrames(Protocol):
    async def latest(self, stream_id: Id) -> HotFrame | None: ...


# --- The rest ------------------------------------------------------------------------------


class QueueDepths(Protocol):
    # (connected to RabbitMQ, the messages ready per work and dead-letter queue: None when
    # not connected or not readable).
    async def probe(self) -> tuple[bool, dict[str, int] | None]: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    # Costs the same without a stored hash, so timing tells nothing.
    async def verify(self, stored_hash: str | None, password: str) -> bool: ...


class TtlLookup(Protocol[T]):
    """An in-process cache of lookups; ``epoch`` rises on every clear, and a lookup started
    before one is not stored."""

    @property
    def epoch(self) -> int: ...
    def get(self, key: bytes) -> tuple[bool, T | None]: ...
    def put(self, key: bytes, value: T | None, epoch: int) -> None: ...
    def evict(self, key: bytes) -> None: ...


class FrameImages(Protocol):
    # The frame ``load`` reads, encoded as asked (kept under ``key``); raises
    # UndecodableFrame when it is no image.
    async def get(
        self, key: tuple[object, ...], load: Callable[[], Awaitable[bytes]], asked: FrameRequest
    ) -> Encoded: ...


@dataclass(kw_only=True)
class Deps:
    """Everything a handler reaches: settings and ports (bootstrap.py builds them)."""

    settings: ApiSettings
    codec: TokenCodec
    storage: SnapshotStorage
    db: Database
    cache: StreamCache
    counts: CountsReader
    rates: RateCounters
    hot_frames: HotFrames
    queues: QueueDepths
    passwords: PasswordHasher
    # API key lookups (hash -> principal fields), trusted while revocations are heard.
    key_cache: TtlLookup[dict[str, object]]
    # Each stream's tenant for the image routes (it never changes, so a stale entry can only
    # name the right tenant of a deleted stream).
    stream_tenants: TtlLookup[str]
    frames: FrameImages
    # The dashboard's last RabbitMQ queue depths (monotonic time, depths), and its probe lock.
    broker_state: tuple[float, dict[str, int]] | None = None
    broker_probe: asyncio.Lock = field(default_factory=asyncio.Lock)
