"""How far behind the outbox relay is: what is waiting, since when, and what keeps failing."""

from __future__ import annotations

from dataclasses import dataclass

from lookout_shared.db import Conn


@dataclass(frozen=True)
class OutboxStatus:
    backlog: int
    oldest_age_seconds: float | None
    failing: int
    max_attempts: int
    failing_types: dict[str, int]


async def outbox_status(conn: Conn) -> OutboxStatus:
    # Every filter is on published_at IS NULL, so the partial index keeps this cheap
    # however many published rows the table keeps.
    summary = await conn.fetchrow(
        """SELECT count(*) AS backlog,
                  extract(epoch FROM now() - min(created_at))::float8 AS oldest_age,
                  count(*) FILTER (WHERE last_error IS NOT NULL) AS failing,
                  coalesce(max(attempts), 0) AS max_attempts
           FROM outbox WHERE published_at IS NULL"""
    )
    failing_types = await conn.fetch(
        """SELECT message_type, count(*) AS n FROM outbox
           WHERE published_at IS NULL AND last_error IS NOT NULL
           GROUP BY message_type ORDER BY n DESC, message_type"""
    )
    assert summary is not None  # an aggregate always returns one row
    return OutboxStatus(
        backlog=summary["backlog"],
        oldest_age_seconds=summary["oldest_age"],
        failing=summary["failing"],
        max_attempts=summary["max_attempts"],
        failing_types={row["message_type"]: row["n"] for row in failing_types},
    )
