"""Entity tags of streams and the conditional headers that use them (RFC 9110 §13).

A stream's tag is ``"<id>.<version>"``: it changes exactly when the version rises.
"""

from __future__ import annotations

import uuid

ANY = "*"


def etag(entity_id: uuid.UUID, version: int) -> str:
    return f'"{entity_id}.{version}"'


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def none_match(header: str | None, entity_id: uuid.UUID, version: int) -> bool:
    """True when ``If-None-Match`` names the current version (answer 304)."""
    return header is not None and matches(header, etag(entity_id, version))


def matches(header: str, current: str) -> bool:
    """True when a conditional header's list names ``current`` (or is ``*``)."""
    tags = _tags(header)
    return ANY in tags or current in tags


def expected_version(header: str | None, entity_id: uuid.UUID) -> int | None:
    """The version an ``If-Match`` header requires; None when any version will do.

    A tag for another entity, or one we never issued, requires version -1: it can never
    match, so the request fails with 412 as the RFC asks.
    """
    if header is None:
        return None
    tags = _tags(header)
    if ANY in tags:
        return None
    prefix = f'"{entity_id}.'
    for tag in tags:
        if tag.startswith(prefix) and tag.endswith('"'):
            number = tag[len(prefix) : -1]
            if number.isdigit():
                return int(number)
    return -1
