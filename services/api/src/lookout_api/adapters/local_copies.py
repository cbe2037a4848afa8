"""The read cache's in-process layer: copies of Redis entries served without a round trip.

A copy is trusted only while the invalidation channel (cache_tracking.py) is connected and
has been in sync since the copy was taken: ``live`` is off while it is down, and ``seq``
moves on every invalidation, so a copy read from Redis across one is never kept (the
invalidation may have been for it). Writes through this process drop their scopes' copies
at once (read-your-writes); writes through any other process arrive as invalidations.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lookout_api.adapters.read_cache import Entry


@dataclass
class _Copy:
    expires: float
    entry: Entry
    scope: uuid.UUID | None
    kind: str


class LocalCopies:
    """Copies bounded in bytes, each with its own lifetime, dropped by scope. Hand-written
    rather than cachetools (TLRUCache with getsizeof would bound them the same way):
    ``get`` is the whole work of an in-process cached GET hit, and a cachetools lookup
    measured several times a dict lookup and a clock read (4.0 us against 0.6 us)."""

    def __init__(
        self, seconds: float, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.enabled = seconds > 0 and max_bytes > 0
        self.live = False  # the invalidation channel is up and in sync
        self.seq = 0  # moves on every invalidation, connect and disconnect
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._bytes = 0
        self._clock = clock

    def get(self, key: str) -> Entry | None:
        if not self.live:
            return None
        copy = self._copies.get(key)
        if copy is None:
            return None
        if copy.expires <= self._clock():
            self._drop(key)
            return None
        return copy.entry

    def put(
        self,
        key: str,
        scope: uuid.UUID | None,
        kind: str,
        entry: Entry,
        seq: int,
        seconds: float | None = None,
    ) -> None:
        """Keep ``entry`` if nothing was invalidated since ``seq`` was read, for
        ``seconds`` at most (the Redis entry's remaining TTL) or the layer's own time."""
        if not (self.enabled and self.live) or seq != self.seq:
            return
        if len(entry.body) > self.max_bytes:
            return
        self._drop(key)
        lifetime = self.seconds if seconds is None else min(self.seconds, seconds)
        if lifetime <= 0:
            return
        self._copies[key] = _Copy(self._clock() + lifetime, entry, scope, kind)
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._copies)))  # the oldest first

    def count(self, kind: str | None = None) -> int:
        return sum(1 for copy in self._copies.values() if kind is None or copy.kind == kind)

    # Invalidation ------------------------------------------------------------------------

    def drop_scopes(
        self, scopes: Iterable[uuid.UUID | None], kinds: Collection[str] | None = None
    ) -> None:
        """Drop the copies of ``scopes`` (of ``kinds`` only, if given)."""
        self.seq += 1
        dropped = set(scopes)
        for key in [
            k
            for k, copy in self._copies.items()
            if copy.scope in dropped and (kinds is None or copy.kind in kinds)
        ]:
            self._drop(key)

    def drop_all(self, kinds: Collection[str] | None = None) -> None:
        self.seq += 1
        if kinds is None:
            self._copies.clear()
            self._bytes = 0
            return
        for key in [k for k, copy in self._copies.items() if copy.kind in kinds]:
            self._drop(key)

    def resume(self) -> None:
        """The channel is (back) in sync: start from nothing, since invalidations sent while
        it was down are lost."""
        self.drop_all()
        self.live = self.enabled

    def pause(self) -> None:
        """The channel is down: no copy can be checked, so none is served."""
        self.live = False
        self.drop_all()

    def _drop(self, key: str) -> None:
        copy = self._copies.pop(key, None)
        if copy is not None:
            self._bytes -= len(copy.entry.body)
