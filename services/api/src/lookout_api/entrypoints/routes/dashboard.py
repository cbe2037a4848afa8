"""The dashboard summary: one call for a tenant's (or the platform's) state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from lookout_api import handlers
from lookout_api.domain import access
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, problems
from lookout_api.entrypoints.snapshot_schemas import (
    DashboardCounts,
    DashboardOut,
    DriftOut,
    ErrorStreamOut,
    FailedJobOut,
    OutboxOut,
    QueuesOut,
    QuotasOut,
)

router = APIRouter(prefix="/api/v1", tags=["dashboard"], responses=COMMON)


@router.get(
    "/dashboard/summary",
    response_model=DashboardOut,
    response_model_exclude_unset=True,
    name="get_summary",
    summary="A tenant's (or the platform's) state in one call",
    responses=problems(503),
)
async def summary(
    deps: DepsDep,
    principal: PrincipalDep,
    request: Request,
    tenant_id: Annotated[
        uuid.UUID | None, Query(description="superusers: one tenant (default: the platform)")
    ] = None,
) -> DashboardOut:
    """Viewers receive failures by category only (``error_category``,
    ``last_error_category``), without the detail (``error``, ``last_error``)."""
    d = await handlers.dashboard(deps, principal, tenant_id)
    # Kept in the process's read cache only when its counts are the aggregator's (as /counts).
    request.state.cache_keep = d.counts_source == "counts"
    return DashboardOut(
        scope="platform" if d.scope is None else str(d.scope),
        counts=DashboardCounts(source=d.counts_source, counts=d.counts),
        failed_jobs=[
            FailedJobOut.model_validate(access.visible(principal, j)) for j in d.failed_jobs
        ],
        error_streams=[
            ErrorStreamOut.model_validate(access.visible(principal, s)) for s in d.error_streams
        ],
        queues=QueuesOut(
            outbox=OutboxOut(
                unpublished=d.outbox_unpublished, oldest_age_seconds=d.outbox_oldest_age_seconds
            ),
            rabbitmq=d.queue_depths,
        ),
        health=d.health,
        quotas=None if d.quota_usage is None else QuotasOut.of(d.quota_usage),
        drift=None
        if d.drift is None
        else DriftOut(
            checked_at=datetime.fromtimestamp(d.drift.checked_at, UTC),
            mode=d.drift.mode,
            scopes=d.drift.scopes,
            fields=d.drift.fields,
        ),
    )
