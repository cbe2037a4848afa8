"""Text and cursors Postgres cannot take are refused before any query: the rules alone."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lookout_api.domain import listing
from lookout_api.domain.errors import InvalidInput
from lookout_api.domain.text import check_text, text_problem
from lookout_api.entrypoints.stream_schemas import BulkIn, StreamIn
from pydantic import ValidationError

SID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def raw_cursor(payload: object) -> str:
    # json, not orjson: a cursor may carry what orjson refuses to write (ints over 64 bits).
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_nul_and_unpaired_surrogates_are_not_storable_text() -> None:
    assert text_problem("plain text, tabs\tand ümlauts") is None
    assert "NUL" in (text_problem("a\x00b") or "")
    assert "surrogate" in (text_problem("a\ud800") or "")
    assert check_text(["ok", {"k": ("v",)}]) == ["ok", {"k": ("v",)}]
    with pytest.raises(ValueError, match=r"item 1: .*NUL"):
        check_text(["ok", "b\x00"])
    with pytest.raises(ValueError, match="NUL"):
        check_text({"k\x00": "v"})


def test_request_models_name_the_field_holding_a_nul() -> None:
    with pytest.raises(ValidationError) as bad:
        StreamIn.model_validate({"name": "cam", "url": "rtsp://x/y", "tags": ["a", "b\x00"]})
    assert [e["loc"] for e in bad.value.errors()] == [("tags",)]
    assert "item 1" in bad.value.errors()[0]["msg"]
    with pytest.raises(ValidationError) as bad:
        BulkIn.model_validate({"items": [{"name": "ok"}, {"name": "n\x00"}]})
    assert [e["loc"] for e in bad.value.errors()] == [("items", 1, "name")]


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
