"""What a drift check reports: a count that differs between Redis and Postgres."""

from __future__ import annotations

from dataclasses import dataclass

PLATFORM = "platform"


@dataclass(frozen=True)
class Drift:
    scope: str  # a tenant id or "platform"
    field: str
    sql: int
    redis: int


def label_of(field: str) -> str:
    """The metric label of a count field: tags are user-chosen, so they share one label."""
    return "streams_tag:*" if field.startswith("streams_tag:") else field
