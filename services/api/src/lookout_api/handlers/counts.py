"""Live counts, as the count-aggregator keeps them in Redis, counted in SQL by the same
rules when Redis cannot answer."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from lookout_shared.tokens import Principal

from lookout_api.domain import access
from lookout_api.ports import Deps, RedisUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counts:
    scope: uuid.UUID | None  # the tenant; None: the platform (a superuser)
    values: dict[str, int]
    source: Literal["counts", "sql"]
    degraded: bool  # Redis did not answer in time (or failed a moment ago)


async def counts(deps: Deps, principal: Principal) -> Counts:
    """The tenant's counts (every tenant's for a superuser). SQL counts instead when Redis
    is down or slow, when its counts are not trusted (it lost state since the aggregator's
    last rebuild: see ``lookout_shared.counts_epoch``), and when it has no hash for the
    scope yet (the aggregator has not seen the tenant)."""
    scope = access.tenant_filter(principal)
    try:
        values = await deps.counts.counts(scope)
    except RedisUnavailable as exc:
        log.debug("counts unavailable, counting in SQL: %s", exc)
        return Counts(scope, await deps.db.count_in_sql(scope), "sql", True)
    if not values:
        return Counts(scope, await deps.db.count_in_sql(scope), "sql", False)
    return Counts(scope, values, "counts", False)
