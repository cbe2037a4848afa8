"""The read cache of stream reads in Redis (cache-aside, whole responses). The breaker that
keeps the api fast while Redis is down is in breaker.py, the generation bumps of writes in
cache_generations.py.

Keys, under the deployment's prefix:

- ``cache:gen:<tenant id>`` and ``cache:gen:platform``: generations. Every committed stream
  write bumps its tenant's and the platform's (a superuser's cross-tenant reads).
- ``cache:epoch``: bumped as soon as Redis answers again after a bump was lost, which makes
  every entry stale at once (an outage is rare; a cold cache after one is cheap).
- ``cache:<kind>:<scope>:<digest>``: an entry: one JSON header line (the ``epoch.generation``
  it was computed under, the count fields its total came from and their values then, its
  response headers) and the final response bytes, so a hit skips Postgres and pydantic.

A lookup is one EVALSHA: Redis itself checks the entry's stamp and watched count fields
against the current ones and returns the entry only when they all still match. A miss keeps
the stamp it read before Postgres was queried, so a write racing the read leaves the new entry
stale at once. Entries expire after a TTL: the bound on changes made outside the api (the
worker's probe results).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from lookout_shared.count_keys import scope_key
from lookout_shared.counts_epoch import CURRENT_EPOCH_LUA
from lookout_shared.counts_epoch import epoch_key as counts_epoch_key
from lookout_shared.redis import Keys
from lookout_shared.telemetry import untraced
from redis.asyncio import Redis

from lookout_api.adapters.breaker import Breaker as Breaker
from lookout_api.adapters.breaker import RedisUnavailable as RedisUnavailable
from lookout_api.adapters.cache_generations import Generations, epoch_key, generation_key
from lookout_api.adapters.local_copies import LocalCopies
from lookout_api.metrics import CACHE_SECONDS as SECONDS

log = logging.getLogger(__name__)


ENTRY_KEYS_MAX = 100_000  # remembered entry keys (about 20 MiB at most), cleared when full

# KEYS: epoch, generation, entry, the scope's counts hash, the counts epoch. ARGV[1]: "1" bumps
# the epoch first (a lost bump). Returns {stamp, entry or nil[, its remaining TTL in ms]}: the
# entry only while its stamp,
# the counts epoch its total was decided under (if any) and every count field it watches
# still hold the values it was computed from ("" for a missing field).
LOOKUP = (
    CURRENT_EPOCH_LUA
    + """
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local stamp = (redis.call('GET', KEYS[1]) or '0') .. '.' .. (redis.call('GET', KEYS[2]) or '0')
local entry = redis.call('GET', KEYS[3])
if not entry then return {stamp, false} end
local head = cjson.decode(string.sub(entry, 1, string.find(entry, '\\n', 1, true) - 1))
if head.s ~= stamp then return {stamp, false} end
if head.e and head.e ~= current_epoch(KEYS[5]) then return {stamp, false} end
if #head.f > 0 then
  local now = redis.call('HMGET', KEYS[4], unpack(head.f))
  for i = 1, #head.f do
    if (now[i] or '') ~= head.w[i] then return {stamp, false} end
  end
end
return {stamp, entry, redis.call('PTTL', KEYS[3])}
"""
)


class CacheKey(NamedTuple):
    kind: str  # "stream" or "list": the metric label and part of the key
    scope: uuid.UUID | None  # the tenant read; None: every tenant (a superuser)
    parts: tuple[Any, ...]  # everything else the response depends on: hashable values


@dataclass(frozen=True)
class Entry:
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. the ETag
    # The 200 answer's header list as sent, built once per entry rather than per hit.
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        raw = [(b"content-type", b"application/json")]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-length", str(len(self.body)).encode()))
        object.__setattr__(self, "raw_headers", tuple(raw))


@dataclass(frozen=True)
class Lookup:
    stamp: str  # "epoch.generation" of the scope when looked up: store a miss under it
    entry: Entry | None
    seq: int = 0  # the local layer's invalidation count then: a copy read across one is stale


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
        invalidate_timeout: float | None = None,
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
        # In-process copies, on while the invalidation channel (cache_tracking.py) is up.
        self.local = LocalCopies(local_seconds, local_max_bytes, clock)
        # Generation bumps, and the epoch bump owed when one is lost.
        self.generations = Generations(redis, keys, breaker, invalidate_timeout or timeout)
        self._lookup_script = redis.register_script(LOOKUP)
        self._entry_keys: dict[CacheKey, str] = {}

    # Keys -------------------------------------------------------------------------------

    def _epoch_key(self) -> str:
        return epoch_key(self.keys)

    def _gen_key(self, scope: uuid.UUID | None) -> str:
        return generation_key(self.keys, scope)

    def entry_key(self, key: CacheKey) -> str:
        """The Redis key of ``key``; remembered, since a hit would otherwise pay a JSON
        encoding and a SHA-256 to find its in-process copy."""
        known = self._entry_keys.get(key)
        if known is not None:
            return known
        digest = hashlib.sha256(orjson.dumps(key.parts, default=str)).hexdigest()[:32]
        scope = "platform" if key.scope is None else str(key.scope)
        known = self.keys("cache", key.kind, scope, digest)
        if len(self._entry_keys) >= ENTRY_KEYS_MAX:
            self._entry_keys.clear()
        self._entry_keys[key] = known
        return known

    # Reads ------------------------------------------------------------------------------

    async def lookup(self, key: CacheKey) -> Lookup:
        """The entry for ``key`` if it is still valid, and the stamp to store a miss under.
        Raises RedisUnavailable when Redis does not answer in time (or failed a moment ago)."""
        entry_key = self.entry_key(key)
        local = self.local.get(entry_key)
        if local is not None:
            return Lookup("", local)
        seq = self.local.seq
        owed = self.generations.owed
        keys = [
            self._epoch_key(),
            self._gen_key(key.scope),
            entry_key,
            scope_key(self.keys, key.scope),
            counts_epoch_key(self.keys),
        ]
        started = time.perf_counter()
        # Looked up in front of the app (cached_reads.py), outside any trace: no lone span.
        try:
            with untraced():
                stamp, raw, *left = await self.breaker.call(
                    lambda: self._lookup_script(keys=keys, args=["1" if owed else "0"]),
                    self.timeout,
                )
        finally:
            SECONDS.labels(key.kind).observe(time.perf_counter() - started)
        self.generations.paid(owed)
        stamp = _text(stamp) or ""
        if raw is None:
            return Lookup(stamp, None, seq)
        head, _, body = bytes(raw).partition(b"\n")
        entry = Entry(body, orjson.loads(head)["h"])
        # A copy never outlives its Redis entry: the TTL bounds changes made outside the api.
        self.local.put(entry_key, key.scope, key.kind, entry, seq, int(left[0]) / 1000)
        return Lookup(stamp, entry, seq)

    def local_lookup(self, key: CacheKey) -> Lookup:
        """The in-process copy of a kind kept nowhere else (counts, dashboards), or none."""
        seq = self.local.seq
        return Lookup("", self.local.get(self.entry_key(key)), seq)

    def keep_local(self, key: CacheKey, found: Lookup, entry: Entry, seconds: float | None) -> None:
        """Keep ``entry`` in this process only, if nothing was invalidated since ``found``
        (for ``seconds`` at most; None: the layer's own time)."""
        self.local.put(self.entry_key(key), key.scope, key.kind, entry, found.seq, seconds)

    async def store(
        self,
        key: CacheKey,
        found: Lookup,
        entry: Entry,
        watched: Mapping[str, str | None],
        counts_epoch: str | None = None,
    ) -> None:
        """Keep ``entry``, computed after the lookup that ``found`` nothing. ``watched``:
        the count fields the response was computed from, with their values then;
        ``counts_epoch``: the counts epoch they were read under (None: not consulted)."""
        stamp = found.stamp
        head: dict[str, Any] = {
            "s": stamp,
            "f": list(watched),
            "w": [value or "" for value in watched.values()],
            "h": dict(entry.headers),
        }
        if counts_epoch is not None:
            head["e"] = counts_epoch
        header = orjson.dumps(head)
        value = header + b"\n" + entry.body
        entry_key = self.entry_key(key)
        with untraced():  # after the route's span, in front of the app: no lone span
            await self.breaker.call(
                lambda: self.redis.set(entry_key, value, px=self.ttl_ms), self.timeout
            )
        # Kept here only if nothing was invalidated since the lookup (a racing write).
        self.local.put(entry_key, key.scope, key.kind, entry, found.seq, self.ttl_ms / 1000)

    # Writes -----------------------------------------------------------------------------

    async def invalidate(self, tenant_ids: Iterable[uuid.UUID]) -> None:
        """Called after a stream write commits, before its response: the next read of these
        tenants (and of the platform) misses, in every api process. A bump Redis does not
        take is owed and made up as soon as Redis answers (cache_generations.py); the
        write still succeeds."""
        tenants = {*tenant_ids}
        self.local.drop_scopes([*tenants, None])
        await self.generations.bump(tenants)
        # Again: a read that raced the bump may have copied an entry from before it.
        self.local.drop_scopes([*tenants, None])

    async def close(self) -> None:
        await self.generations.close()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
