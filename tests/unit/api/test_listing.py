"""List reads' parameters (domain/listing.py): cursors (round trip, tampering, values out of
range or of the wrong shape, instants kept in UTC), sorts, counts, offsets, sparse fields."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lookout_api.domain import listing
from lookout_api.domain.errors import InvalidInput

SID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def raw_cursor(payload: object) -> str:
    # json, not orjson: a cursor may carry what orjson refuses to write (ints over 64 bits).
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


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


@pytest.mark.parametrize(
    ("sort", "payload"),
    [
        ("-created_at", {"s": "-created_at", "v": "99999-01-01T00:00:00+00:00", "i": str(SID)}),
        ("-created_at", {"s": "-created_at", "v": "-0001-01-01T00:00:00+00:00", "i": str(SID)}),
        # Valid for datetime, out of its range once in UTC (asyncpg sends UTC).
        ("-created_at", {"s": "-created_at", "v": "0001-01-01T00:00:00+14:00", "i": str(SID)}),
        ("-created_at", {"s": "-created_at", "v": "9999-12-31T23:59:59-14:00", "i": str(SID)}),
        ("-created_at", {"s": "-created_at", "v": 10**30, "i": str(SID)}),
        ("-created_at", {"s": "-created_at", "v": "2026-01-01T00:00:00", "i": str(SID)}),
        ("-created_at", {"s": "-created_at", "v": "2026-01-01T00:00:00+00:00", "i": 10**40}),
        ("-created_at", {"s": "-created_at", "v": "2026-01-01T00:00:00+00:00", "i": None}),
        ("-created_at", {"s": ["-created_at"], "v": "2026-01-01T00:00:00+00:00", "i": str(SID)}),
        ("name", {"s": "name", "v": "a\x00", "i": str(SID)}),
        ("name", {"s": "name", "v": "a\ud800", "i": str(SID)}),
        ("name", [1, 2]),
    ],
)
def test_a_cursor_out_of_range_or_of_the_wrong_shape_is_invalid_input(
    sort: str, payload: object
) -> None:
    with pytest.raises(InvalidInput, match=r"^cursor: not a cursor this API returned$"):
        listing.decode_cursor(raw_cursor(payload), listing.Sort.parse(sort))


def test_garbage_base64_is_invalid_input() -> None:
    for bad in ("!!!###", "ab\x00cd", base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), "=="):
        with pytest.raises(InvalidInput, match=r"^cursor: "):
            listing.decode_cursor(bad, listing.Sort.parse("-created_at"))


def test_a_cursor_timestamp_is_kept_as_the_same_instant_in_utc() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    sort = listing.Sort.parse("created_at")
    decoded = listing.decode_cursor(listing.encode_cursor(sort, at, SID), sort)
    assert decoded.value == at and decoded.value.tzinfo == UTC  # type: ignore[union-attr]
