"""The read cache of stream reads in Redis (cache-aside), and the breaker that keeps the api
fast while Redis is down.

Keys, under the deployment's prefix:

- ``cache:gen:<tenant id>`` and ``cache:gen:platform``: generations. Every committed stream
  write bumps its tenant's and the platform's (a superuser's cross-tenant reads).
- ``cache:epoch``: bumped once Redis answers again after a bump was lost, which makes every
  entry stale at once (an outage is rare; a cold cache after one is cheap).
- ``cache:<kind>:<scope>:<digest>``: an entry: one JSON header line (the ``epoch.generation``
  it was computed under, the count fields it was computed from, small metadata) and the
  final response bytes, so a hit skips Postgres and pydantic alike.

A read fetches the generations, the entry and the watched count fields in one round trip and
uses the entry only when they all still match. A miss keeps the generation it read before
Postgres was queried, so a write racing the read leaves the new entry stale at once. Entries
expire after a TTL: the bound on changes made outside the api (the worker's probe results).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from lookout_shared.redis import Keys
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lookout_api.adapters import counts_redis

log = logging.getLogger(__name__)

T = TypeVar("T")

REQUESTS = Counter(
    "lookout_cache_requests_total",
    "Read cache lookups by kind (stream, list) and result (hit, miss, bypass, error)",
    ["kind", "result"],
)
SECONDS = Histogram(
    "lookout_cache_seconds",
    "Time of one read cache lookup in Redis",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


# One round trip, one command: redis-py's pipeline object costs more client CPU than the
# lookup itself. KEYS: epoch, generation, entry, the scope's counts hash. ARGV: "1" to bump
# the epoch first (a lost bump), "1" to return the entry (no in-process copy), then the
# watched count fields. Missing values come back as nil.
LOOKUP = """
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local entry = false
if ARGV[2] == '1' then entry = redis.call('GET', KEYS[3]) end
local watched = {}
if #ARGV > 2 then watched = redis.call('HMGET', KEYS[4], unpack(ARGV, 3)) end
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), entry, watched}
"""


class RedisUnavailable(Exception):
    """Redis failed, was too slow, or is skipped because it failed a moment ago."""

    def __init__(self, reason: str, *, skipped: bool = False) -> None:
        super().__init__(reason)
        self.skipped = skipped


class Breaker:
    """After a Redis failure, skip Redis for ``cooldown`` seconds instead of paying the
    timeout on every request; the first call after that tries again."""

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return self._clock() >= self._open_until

    def trip(self, reason: str) -> None:
        if self.closed:
            log.warning("Redis unavailable, skipping it for %.1fs: %s", self.cooldown, reason)
        self._open_until = self._clock() + self.cooldown

    async def call(self, op: Callable[[], Awaitable[T]], seconds: float) -> T:
        """``op()``'s result, if Redis answers within ``seconds``."""
        if not self.closed:
            raise RedisUnavailable("Redis failed less than a moment ago", skipped=True)
        try:
            async with asyncio.timeout(seconds):
                return await op()
        except (RedisError, OSError, TimeoutError) as exc:
            self.trip(repr(exc))
            raise RedisUnavailable(repr(exc)) from exc


@dataclass(frozen=True)
class CacheKey:
    kind: str  # "stream" or "list": the metric label and part of the key
    scope: uuid.UUID | None  # the tenant read; None: every tenant (a superuser)
    parts: tuple[Any, ...]  # everything else the response depends on (fields included)
    watch: tuple[str, ...] = ()  # count fields of the scope the response was computed from


@dataclass(frozen=True)
class Computed:
    """A response computed from Postgres. ``degraded``: Redis failed on the way (a total
    counted in SQL), so it is served but not stored."""

    body: bytes
    meta: Mapping[str, str] = field(default_factory=dict)
    degraded: bool = False


@dataclass(frozen=True)
class Served:
    body: bytes
    meta: Mapping[str, str]
    degraded: bool  # Redis could not be used: say so to the client


@dataclass(frozen=True)
class _Found:
    stamp: str  # "epoch.generation" of the scope now
    watched: list[str | None]  # the watched count fields now
    entry: Served | None  # a usable entry, if any


@dataclass
class _Local:
    expires: float
    stamp: str
    watched: list[str | None]
    served: Served


class ReadCache:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        breaker: Breaker,
        *,
        enabled: bool,
        ttl: float,
        timeout: float,
        local_seconds: float = 0.0,
        local_max_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.breaker = breaker
        self.enabled = enabled
        self.ttl_ms = max(1, int(ttl * 1000))
        self.timeout = timeout
        self._local_seconds = local_seconds
        self._local_max_bytes = local_max_bytes
        self._local: OrderedDict[str, _Local] = OrderedDict()
        self._local_bytes = 0
        self._clock = clock
        # A generation bump was lost: bump the epoch as soon as Redis answers again.
        self._owed = False
        self._lookup_script = redis.register_script(LOOKUP)

    # Keys -------------------------------------------------------------------------------

    def _epoch_key(self) -> str:
        return self.keys("cache", "epoch")

    def _gen_key(self, scope: uuid.UUID | None) -> str:
        return self.keys("cache", "gen", "platform" if scope is None else scope)

    def entry_key(self, key: CacheKey) -> str:
        digest = hashlib.sha256(orjson.dumps(key.parts, default=str)).hexdigest()[:32]
        scope = "platform" if key.scope is None else str(key.scope)
        return self.keys("cache", key.kind, scope, digest)

    # Reads ------------------------------------------------------------------------------

    async def fetch(self, key: CacheKey, compute: Callable[[], Awaitable[Computed]]) -> Served:
        """The cached response for ``key``, or ``compute()``'s, stored for the next read."""
        if not self.enabled:
            REQUESTS.labels(key.kind, "bypass").inc()
            return _served(await compute())
        try:
            found = await self._lookup(key)
        except RedisUnavailable as exc:
            REQUESTS.labels(key.kind, "bypass" if exc.skipped else "error").inc()
            computed = await compute()
            return Served(computed.body, computed.meta, degraded=True)
        if found.entry is not None:
            REQUESTS.labels(key.kind, "hit").inc()
            return found.entry
        REQUESTS.labels(key.kind, "miss").inc()
        computed = await compute()
        if computed.degraded:
            return _served(computed)
        try:
            await self._store(key, found, computed)
        except RedisUnavailable:
            return Served(computed.body, computed.meta, degraded=True)
        return _served(computed)

    async def _lookup(self, key: CacheKey) -> _Found:
        entry_key = self.entry_key(key)
        local = self._local_get(entry_key)
        owed = self._owed
        keys = [
            self._epoch_key(),
            self._gen_key(key.scope),
            entry_key,
            counts_redis.hash_key(self.keys, key.scope),
        ]
        args = ["1" if owed else "0", "0" if local else "1", *key.watch]
        started = time.perf_counter()
        try:
            epoch, generation, raw, watched_raw = await self.breaker.call(
                lambda: self._lookup_script(keys=keys, args=args), self.timeout
            )
        except RedisUnavailable as exc:
            if not exc.skipped:
                SECONDS.labels(key.kind).observe(time.perf_counter() - started)
            raise
        SECONDS.labels(key.kind).observe(time.perf_counter() - started)
        if owed:
            self._owed = False
        stamp = f"{_text(epoch) or 0}.{_text(generation) or 0}"
        watched = [_text(v) for v in watched_raw]
        if local is not None:
            hit = local.stamp == stamp and local.watched == watched
            return _Found(stamp, watched, local.served if hit else None)
        if raw is None:
            return _Found(stamp, watched, None)
        head, _, body = bytes(raw).partition(b"\n")
        header = orjson.loads(head)
        if header["s"] != stamp or header["w"] != watched:
            return _Found(stamp, watched, None)
        served = Served(body, header["m"], degraded=False)
        self._local_put(entry_key, stamp, watched, served)
        return _Found(stamp, watched, served)

    async def _store(self, key: CacheKey, found: _Found, computed: Computed) -> None:
        entry_key = self.entry_key(key)
        header = orjson.dumps({"s": found.stamp, "w": found.watched, "m": dict(computed.meta)})
        value = header + b"\n" + computed.body
        await self.breaker.call(
            lambda: self.redis.set(entry_key, value, px=self.ttl_ms), self.timeout
        )
        self._local_put(entry_key, found.stamp, found.watched, _served(computed))

    # Writes -----------------------------------------------------------------------------

    async def invalidate(self, tenant_ids: Iterable[uuid.UUID]) -> None:
        """Called after a stream write commits, before its response: the next read of these
        tenants (and of the platform) misses. When Redis cannot take the bump, the write
        still succeeds; the entries' TTL bounds the staleness, and the epoch is bumped (every
        entry stale) as soon as Redis answers again."""
        owed = self._owed

        async def op() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                if owed:
                    pipe.incr(self._epoch_key())
                for tenant_id in {*tenant_ids}:
                    pipe.incr(self._gen_key(tenant_id))
                pipe.incr(self._gen_key(None))
                await pipe.execute()

        try:
            await self.breaker.call(op, self.timeout)
        except RedisUnavailable as exc:
            self._owed = True
            log.warning("read cache generation not bumped (entries expire on their TTL): %s", exc)
            return
        if owed:
            self._owed = False

    # The in-process layer ---------------------------------------------------------------

    def _local_get(self, entry_key: str) -> _Local | None:
        local = self._local.get(entry_key)
        if local is None:
            return None
        if local.expires <= self._clock():
            self._local_drop(entry_key)
            return None
        return local

    def _local_put(
        self, entry_key: str, stamp: str, watched: list[str | None], served: Served
    ) -> None:
        if self._local_seconds <= 0 or len(served.body) > self._local_max_bytes:
            return
        self._local_drop(entry_key)
        self._local[entry_key] = _Local(self._clock() + self._local_seconds, stamp, watched, served)
        self._local_bytes += len(served.body)
        while self._local_bytes > self._local_max_bytes:
            self._local_drop(next(iter(self._local)))  # the oldest first

    def _local_drop(self, entry_key: str) -> None:
        local = self._local.pop(entry_key, None)
        if local is not None:
            self._local_bytes -= len(local.served.body)


def _served(computed: Computed) -> Served:
    return Served(computed.body, computed.meta, computed.degraded)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
