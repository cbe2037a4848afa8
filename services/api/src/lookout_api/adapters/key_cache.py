"""An in-process cache of API key lookups, so a machine's requests do not each hit Postgres.

Its TTL is the revocation bound: a key revoked (or whose creator was deleted) through
another process stops working within ``ttl`` seconds; the revoking process evicts it at once.
Unknown keys are cached too, so a flood of garbage keys costs one query per key per TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class TtlCache(Generic[T]):
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, tuple[float, T | None]] = OrderedDict()

    def get(self, key: bytes) -> tuple[bool, T | None]:
        """(hit, value); a hit may carry None (known not to exist)."""
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            self._items.pop(key, None)
            return False, None
        return True, item[1]

    def put(self, key: bytes, value: T | None) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def evict(self, key: bytes) -> None:
        self._items.pop(key, None)
