"""Pure rules of the api: ETags, list parameters, stream changes, the key cache."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from lookout_api.adapters.api_key_cache import TtlCache
from lookout_api.domain import etags, listing, streams
from lookout_api.domain.errors import InvalidInput

SID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def test_etags_and_conditional_headers() -> None:
    tag = etags.etag(SID, 3)
    assert tag == f'"{SID}.3"'
    assert etags.none_match(tag, SID, 3) and etags.none_match(f'W/{tag}, "x"', SID, 3)
    assert etags.none_match("*", SID, 3) and not etags.none_match(tag, SID, 4)
    assert etags.expected_version(None, SID) is None
    assert etags.expected_version("*", SID) is None
    assert etags.expected_version(tag, SID) == 3
    assert etags.expected_version(f'"{uuid.uuid4()}.3"', SID) == -1  # another entity's tag
    assert etags.expected_version('"garbage"', SID) == -1


def test_cursor_round_trip_and_tampering() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    sort = listing.Sort.parse("-created_at")
    cursor = listing.encode_cursor(sort, at, SID)
    assert listing.decode_cursor(cursor, sort) == listing.Position(at, SID)
    by_name = listing.Sort.parse("name")
    assert listing.decode_cursor(listing.encode_cursor(by_name, "b", SID), by_name).value == "b"
    with pytest.raises(InvalidInput, match="sort=-created_at"):
        listing.decode_cursor(cursor, by_name)
    for bad in ("", "!!", "e30", cursor[:-3]):
        with pytest.raises(InvalidInput):
            listing.decode_cursor(bad, sort)
    with pytest.raises(InvalidInput):
        listing.Sort.parse("url")


def test_count_dimension_and_offsets_and_fields() -> None:
    f = listing.StreamFilter
    assert listing.count_field(f(None)) == "streams_total"
    assert listing.count_field(f(None, status="online")) == "streams_status:online"
    assert listing.count_field(f(None, kind="hls")) == "streams_kind:hls"
    assert listing.count_field(f(None, tag="door")) == "streams_tag:door"
    assert listing.count_field(f(None, status="online", tag="door")) is None
    assert listing.count_field(f(None, q="gate")) is None
    assert listing.page_offset(None, 3, 50, None) == 100
    assert listing.page_offset(10, None, 50, None) == 10
    with pytest.raises(InvalidInput):
        listing.page_offset(10, 2, 50, None)
    with pytest.raises(InvalidInput):
        listing.page_offset(10, None, 50, "c")
    with pytest.raises(InvalidInput):
        listing.page_offset(listing.MAX_OFFSET + 1, None, 50, None)
    assert listing.parse_fields("status,name") == ("id", "name", "status")
    assert listing.parse_fields(None) is None
    with pytest.raises(InvalidInput, match="password"):
        listing.parse_fields("password")
    assert listing.like_pattern("50%_a\\") == "%50\\%\\_a\\\\%"


CURRENT = {
    "hot": False,
    "hot_mode": "keyframes",
    "name": "gate",
    "url": "rtsp://cam/a",
    "kind": "rtsp",
    "tags": ["a"],
    "enabled": True,
    "status": "online",
    "last_error": None,
    "last_error_category": None,
    "width": 640,
    "height": 480,
    "codec": "h264",
}


def test_stream_changes() -> None:
    rename = streams.apply_changes(CURRENT, {"name": "gate 2"}, None)
    assert rename.changed == ("name",) and not rename.probe and rename.values["width"] == 640
    same = streams.apply_changes(CURRENT, {"name": "gate", "tags": ["A"]}, None)
    assert same.changed == ()
    moved = streams.apply_changes(CURRENT, {"url": "https://cam/x.m3u8"}, None)
    assert moved.probe and moved.values["kind"] == "hls" and moved.values["status"] == "pending"
    assert moved.values["width"] is None
    off = streams.apply_changes(CURRENT, {"enabled": False, "url": "rtsp://cam/b"}, None)
    assert off.values["status"] == "disabled" and not off.probe
    back = streams.apply_changes(
        {**CURRENT, "enabled": False, "status": "disabled"}, {"enabled": True}, None
    )
    assert back.probe and back.values["status"] == "pending"
    heated = streams.apply_changes(CURRENT, {"hot": True, "hot_mode": "all"}, None)
    assert heated.heats and heated.changed == ("hot", "hot_mode") and not heated.probe
    hot = {**CURRENT, "hot": True}
    assert not streams.apply_changes(hot, {"hot_mode": "all"}, None).heats  # already counted
    bad_mode = {"hot_mode": "sometimes"}
    for bad in (
        {"url": "-i x"},
        {"url": "rtsp://cam/a b"},
        {"name": "  "},
        {"tags": ["a b"]},
        bad_mode,
    ):
        with pytest.raises(InvalidInput):
            streams.apply_changes(CURRENT, bad, None)


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
