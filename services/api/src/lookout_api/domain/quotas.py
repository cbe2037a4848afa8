"""Tenant quotas: how many streams a tenant may hold and how many snapshot requests it may
make per minute. Pure rules: no I/O.

A tenant's own value (a column on ``tenants``) wins; NULL means the api's default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lookout_api.domain.errors import Forbidden, TooManyRequests

# Snapshot requests are counted in fixed windows of one minute.
RATE_WINDOW_SECONDS = 60
# Upper bounds a superuser may set; beyond them a quota means nothing.
MAX_STREAMS_CEILING = 10_000_000
SNAPSHOT_RATE_CEILING = 1_000_000


class QuotaExceeded(Forbidden):
    title = "Quota exceeded"


@dataclass(frozen=True)
class Quotas:
    max_streams: int
    snapshot_requests_per_minute: int
    # Whether each value is the tenant's own (True) or the default (False).
    max_streams_is_default: bool = True
    snapshot_rate_is_default: bool = True
    # Hot streams: held open by a worker that keeps their latest frame (the costliest kind).
    max_hot_streams: int = 0
    max_hot_streams_is_default: bool = True


@dataclass(frozen=True)
class QuotaUsage:
    tenant_id: uuid.UUID
    quotas: Quotas
    streams_used: int
    snapshot_requests_this_minute: int | None  # None: Redis did not answer
    hot_streams_used: int | None = None  # None: not counted (the dashboard)


def effective(
    max_streams: int | None,
    snapshot_requests_per_minute: int | None,
    default_max_streams: int,
    default_snapshot_rate: int,
    max_hot_streams: int | None = None,
    default_max_hot_streams: int = 0,
) -> Quotas:
    return Quotas(
        max_streams=default_max_streams if max_streams is None else max_streams,
        snapshot_requests_per_minute=(
            default_snapshot_rate
            if snapshot_requests_per_minute is None
            else snapshot_requests_per_minute
        ),
        max_streams_is_default=max_streams is None,
        snapshot_rate_is_default=snapshot_requests_per_minute is None,
        max_hot_streams=default_max_hot_streams if max_hot_streams is None else max_hot_streams,
        max_hot_streams_is_default=max_hot_streams is None,
    )


def check_streams(used: int, adding: int, limit: int) -> None:
    """Refuse a create that would take the tenant past its stream limit (a tenant already
    past a lowered limit keeps its streams; it only cannot add more)."""
    if adding > 0 and used + adding > limit:
        room = max(limit - used, 0)
        raise QuotaExceeded(
            f"the tenant may hold at most {limit} streams; it has {used}, "
            f"so {room} more can be created, not {adding}"
        )


def check_hot_streams(used: int, limit: int) -> None:
    """Refuse making one more stream hot past the tenant's hot stream limit (``used``
    excludes the stream being changed; one already hot stays hot under a lowered limit)."""
    if used + 1 > limit:
        raise QuotaExceeded(
            f"the tenant may hold at most {limit} hot streams and has {used}; "
            "turn another stream's hot flag off first"
        )


def check_snapshot_rate(count: int, limit: int, retry_after: int) -> None:
    """``count`` includes the request being checked."""
    if count > limit:
        raise TooManyRequests(
            f"the tenant may request at most {limit} snapshots per minute; "
            f"retry in {retry_after} s",
            retry_after,
        )
