"""Byte ranges and conditional requests of image responses (RFC 9110 §13, §14)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lookout_api.adapters import dashboard_db
from lookout_api.entrypoints.ranged_file import (
    UnsatisfiableRange,
    http_date,
    not_modified,
    parse_range,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=0-0", (0, 0)),
        ("bytes=500-", (500, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("Bytes = 1 - 2", (1, 2)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
    ],
)
def test_satisfiable_ranges(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",
        "bytes=5-4",
        "bytes=-0",
        "bytes=-",
        "bytes=a-b",
        "items=0-1",
        "bytes",
        "bytes=٣-4",
    ],
)
def test_invalid_or_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, SIZE)


def test_an_empty_file_satisfies_no_range() -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range("bytes=-1", 0)


def test_not_modified() -> None:
    tag = '"abc"'
    created = datetime(2026, 11, 22, 12, 0, 0, 500_000, tzinfo=UTC)
    assert not_modified({"if-none-match": tag}, tag, created)
    assert not_modified({"if-none-match": 'W/"abc"'}, tag, created)
    assert not_modified({"if-none-match": '"x", "abc"'}, tag, created)
    assert not_modified({"if-none-match": "*"}, tag, created)
    assert not not_modified({"if-none-match": '"x"'}, tag, created)
    # The HTTP date drops the fraction: the same second is not modified.
    assert not_modified({"if-modified-since": http_date(created)}, tag, created)
    assert not not_modified({"if-modified-since": "Sun, 22 Nov 2026 11:59:59 GMT"}, tag, created)
    assert not not_modified({"if-modified-since": "not a date"}, tag, created)
    # If-None-Match decides when both are present.
    both = {"if-none-match": '"x"', "if-modified-since": http_date(created)}
    assert not not_modified(both, tag, created)
    assert not not_modified({}, tag, created)


def test_the_dashboard_is_one_sql_statement() -> None:
    """The summary's bounded cost rests on this: one statement, so one round trip."""
    sql = dashboard_db.SUMMARY_SQL.strip()
    assert ";" not in sql
    assert sql.startswith("WITH") and sql.count("\nSELECT\n") == 1
