"""How a stream list request is understood: sort, keyset cursor, filters, sparse fields,
and which count dimension (if any) answers its total exactly."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from lookout_shared import streams
from lookout_shared.streams import SORTS, SortKey

from lookout_api.domain.errors import InvalidInput
from lookout_api.domain.text import text_problem

FIELDS = streams.COLUMNS
COUNT_CAP = 10_000
MAX_OFFSET = 100_000


@dataclass(frozen=True)
class Sort:
    key: SortKey
    descending: bool

    @classmethod
    def parse(cls, text: str) -> Sort:
        if text not in SORTS:
            raise InvalidInput(f"sort: must be one of {', '.join(SORTS)}")
        key: SortKey = "name" if text.lstrip("-") == "name" else "created_at"
        return cls(key, text.startswith("-"))

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.key


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: the sort value and id of its last row."""

    value: datetime | str
    row_id: uuid.UUID


@dataclass(frozen=True)
class StreamFilter:
    tenant_id: uuid.UUID | None  # None: every tenant (superusers only)
    status: str | None = None
    kind: str | None = None
    tag: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class StreamQuery:
    filter: StreamFilter
    sort: Sort
    limit: int
    after: Position | None = None
    offset: int = 0


def encode_cursor(sort: Sort, value: datetime | str, row_id: uuid.UUID) -> str:
    raw = orjson.dumps(
        {
            "s": str(sort),
            "v": value.isoformat() if isinstance(value, datetime) else value,
            "i": str(row_id),
        }
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> Position:
    """The position a cursor of ``encode_cursor`` names. Anything else (bad base64 or JSON,
    a field of the wrong type, text Postgres cannot store, a timestamp it cannot compare) is
    an InvalidInput naming the cursor, never a value handed on to the database."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in "svi"):
            raise ValueError("not an object of strings")
        made_for = raw["s"]
        if made_for != str(sort):
            raise InvalidInput(f"cursor: it was made for sort={made_for}; send the same sort")
        row_id = uuid.UUID(raw["i"])
        value: datetime | str = raw["v"]
        if text_problem(raw["v"]) is not None:
            raise ValueError("not storable text")
        if sort.key == "created_at":
            value = _timestamp(raw["v"])
    except InvalidInput:
        raise
    except (ValueError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned") from None
    return Position(value, row_id)


def _timestamp(text: str) -> datetime:
    """An aware timestamp that stays within datetime's range in UTC (asyncpg sends it as
    UTC: 0001-01-01T00:00+14:00 parses but cannot be sent)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("naive timestamp")
    return value.astimezone(UTC)


def page_offset(offset: int | None, page: int | None, limit: int, cursor: str | None) -> int:
    """offset/page are kept for older clients; the cursor is the fast way through a list."""
    if offset is not None and page is not None:
        raise InvalidInput("offset: send either offset or page, not both")
    start = offset if offset is not None else ((page or 1) - 1) * limit
    if start and cursor is not None:
        raise InvalidInput("cursor: cannot be combined with offset or page")
    if start > MAX_OFFSET:
        raise InvalidInput(f"offset: at most {MAX_OFFSET}; use the cursor to go further")
    return start


def parse_fields(text: str | None) -> tuple[str, ...] | None:
    """The requested sparse fieldset (``id`` always included), or None for every field."""
    if text is None:
        return None
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FIELDS]
    if unknown:
        raise InvalidInput(f"fields: unknown field {unknown[0]!r}; choose from {', '.join(FIELDS)}")
    return tuple(f for f in FIELDS if f in wanted or f == "id")


def count_field(f: StreamFilter) -> str | None:
    """The aggregator's count field that is this filter's exact total, when there is one.

    The aggregator counts one dimension at a time, so only "no filter" or a single
    status, kind or tag filter (and no search) has an exact count in Redis.
    """
    if f.q is not None:
        return None
    given = [(k, v) for k, v in (("status", f.status), ("kind", f.kind), ("tag", f.tag)) if v]
    if not given:
        return "streams_total"
    if len(given) == 1:
        dimension, value = given[0]
        return f"streams_{dimension}:{value}"
    return None


def like_pattern(q: str) -> str:
    """A substring ILIKE pattern with the user's wildcards taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
