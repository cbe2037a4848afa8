"""Live counts, as the count-aggregator keeps them in Redis."""

from __future__ import annotations

from lookout_shared.tokens import Principal

from lookout_api.adapters import counts_redis
from lookout_api.bootstrap import Deps
from lookout_api.domain import access


async def counts(deps: Deps, principal: Principal) -> dict[str, int]:
    return await counts_redis.read_counts(deps.redis, deps.keys, access.tenant_filter(principal))
