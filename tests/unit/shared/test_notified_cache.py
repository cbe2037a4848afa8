"""The notified cache (lookout_shared.notified_cache): expiry, eviction, no lookup a clear
overtook, no hit while nothing reports changes."""

from __future__ import annotations

import time

from lookout_shared.notified_cache import TtlCache


def test_key_cache_expires_and_evicts() -> None:
    cache: TtlCache[str] = TtlCache(0.05, max_entries=2)
    cache.put(b"a", "A", cache.epoch)
    cache.put(b"b", None, cache.epoch)
    assert cache.get(b"a") == (True, "A") and cache.get(b"b") == (True, None)
    cache.put(b"c", "C", cache.epoch)  # over capacity: the oldest goes
    assert cache.get(b"a") == (False, None)
    cache.evict(b"c")
    assert cache.get(b"c") == (False, None)
    time.sleep(0.06)
    assert cache.get(b"b") == (False, None)
    off: TtlCache[str] = TtlCache(0)
    off.put(b"x", "X", off.epoch)
    assert off.get(b"x") == (False, None)


def test_key_cache_never_stores_a_lookup_that_a_clear_overtook() -> None:
    cache: TtlCache[str] = TtlCache(60)
    started = cache.epoch  # a lookup starts, then a revocation clears the cache
    cache.clear()
    cache.put(b"k", "stale", started)
    assert cache.get(b"k") == (False, None)
    cache.put(b"k", "fresh", cache.epoch)
    assert cache.get(b"k") == (True, "fresh")


def test_key_cache_is_not_trusted_while_nothing_reports_revocations() -> None:
    cache: TtlCache[str] = TtlCache(60)
    cache.put(b"k", "K", cache.epoch)
    cache.trusted = False  # the listener lost its connection
    assert cache.get(b"k") == (False, None)
    cache.put(b"j", "J", cache.epoch)
    cache.trusted = True
    assert cache.get(b"j") == (False, None)
