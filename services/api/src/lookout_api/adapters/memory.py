"""In-memory twins of the ports, for unit tests (and for trying handlers without servers).

The database twin is in memory_db.py (tables in memory_tables.py); the rest is here.
:class:`MemoryWorld` holds one of each, and ``bootstrap.in_memory`` wires them as the
handlers' ports. ``redis_down`` makes every Redis twin fail as the breaker reports it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lookout_shared.hot_frames import HotFrame
from lookout_shared.storage import StoredObject

from lookout_api.adapters.memory_db import MemoryDatabase
from lookout_api.adapters.memory_tables import Tables, count_rows
from lookout_api.domain.frames import Encoded, FrameRequest
from lookout_api.ports import DashboardValues, RedisUnavailable

__all__ = ["MemoryDatabase", "MemoryWorld", "Tables"]


@dataclass
class RedisTwin:
    """What the Redis twins share: whether Redis is "down", and the counters' values."""

    down: bool = False
    counters: dict[tuple[object, ...], int] = field(default_factory=dict)

    def check(self) -> None:
        if self.down:
            raise RedisUnavailable("Redis is down (in memory)")


class MemoryCache:
    """ports.StreamCache: remembers which tenants' cached reads were made stale."""

    def __init__(self) -> None:
        self.invalidated: list[uuid.UUID] = []

    async def invalidate(self, tenant_ids: Sequence[uuid.UUID]) -> None:
        self.invalidated.extend(tenant_ids)


class MemoryCounts:
    """ports.CountsReader: the aggregator's counts as the tables say (an aggregator that is
    caught up), unless ``trusted`` is False or the scope is in ``unseen``."""

    def __init__(self, tables: Tables, redis: RedisTwin) -> None:
        self.tables, self.redis = tables, redis
        self.trusted = True
        self.unseen: set[uuid.UUID | None] = set()

    async def counts(self, tenant_id: uuid.UUID | None) -> dict[str, int] | None:
        self.redis.check()
        if not self.trusted:
            return None
        return {} if tenant_id in self.unseen else count_rows(self.tables, tenant_id)

    async def fields(
        self, tenant_id: uuid.UUID | None, *names: str
    ) -> tuple[str, list[int | None]] | None:
        values = await self.counts(tenant_id)
        if values is None:
            return None
        return "1", [values.get(n) for n in names]

    async def dashboard(self, tenant_id: uuid.UUID | None) -> DashboardValues:
        values = await self.counts(tenant_id) or {}
        requests = (
            None
            if tenant_id is None
            else self.redis.counters.get(("ratelimit", "snapshots", tenant_id), 0)
        )
        return DashboardValues(values, requests, None)


class MemoryRateCounters:
    """ports.RateCounters; windows never end (a test is shorter than a minute)."""

    def __init__(self, redis: RedisTwin) -> None:
        self.redis = redis

    async def hit(self, key: tuple[object, ...], window: int) -> tuple[int, int]:
        self.redis.check()
        self.redis.counters[key] = self.redis.counters.get(key, 0) + 1
        return self.redis.counters[key], window

    async def current(self, key: tuple[object, ...]) -> tuple[int, int]:
        self.redis.check()
        return self.redis.counters.get(key, 0), 1


class MemoryHotFrames:
    def __init__(self, redis: RedisTwin) -> None:
        self.redis = redis
        self.frames: dict[uuid.UUID, HotFrame] = {}

    async def latest(self, stream_id: uuid.UUID) -> HotFrame | None:
        self.redis.check()
        return self.frames.get(stream_id)


class MemoryQueues:
    """ports.QueueDepths: ``depths`` None means RabbitMQ is not connected."""

    def __init__(self) -> None:
        self.depths: dict[str, int] | None = {}
        self.probes = 0

    async def probe(self) -> tuple[bool, dict[str, int] | None]:
        self.probes += 1
        return self.depths is not None, self.depths


class PlainPasswords:
    """ports.PasswordHasher without argon2's cost (never for real passwords)."""

    async def hash(self, password: str) -> str:
        return "sha256$" + hashlib.sha256(password.encode()).hexdigest()

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return stored_hash is not None and stored_hash == await self.hash(password)


class MemoryFrames:
    """ports.FrameImages: the source bytes as the "encoded" image, kept per key."""

    def __init__(self) -> None:
        self.kept: dict[tuple[object, ...], Encoded] = {}

    async def get(
        self, key: tuple[object, ...], load: Callable[[], Awaitable[bytes]], asked: FrameRequest
    ) -> Encoded:
        if key not in self.kept:
            self.kept[key] = Encoded(await load(), asked.width or 0, asked.height or 0)
        return self.kept[key]


class MemoryStorage:
    """lookout_shared.storage.SnapshotStorage in a directory of the test's."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path("/nonexistent")

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        raise NotImplementedError("the api never stores snapshots")

    def path_of(self, key: str) -> Path:
        return self.root / key


@dataclass
class MemoryWorld:
    """One twin of every port, over shared tables and one Redis twin."""

    tables: Tables = field(default_factory=Tables)
    redis: RedisTwin = field(default_factory=RedisTwin)
    storage: MemoryStorage = field(default_factory=MemoryStorage)

    def __post_init__(self) -> None:
        self.db = MemoryDatabase(self.tables)
        self.cache = MemoryCache()
        self.counts = MemoryCounts(self.tables, self.redis)
        self.rates = MemoryRateCounters(self.redis)
        self.hot_frames = MemoryHotFrames(self.redis)
        self.queues = MemoryQueues()
        self.passwords = PlainPasswords()
        self.frames = MemoryFrames()
