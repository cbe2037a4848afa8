"""Response and request bodies of snapshots, jobs, tenant quotas and the dashboard."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from lookout_shared.contracts import ErrorCategory
from pydantic import BaseModel, ConfigDict, Field

from lookout_api.domain import quotas
from lookout_api.entrypoints.schemas import Body
from lookout_api.entrypoints.stream_schemas import LAST_ERROR, LAST_ERROR_CATEGORY

ERROR = "why the job failed, in detail (host, path); never sent to viewers"
ERROR_CATEGORY = "why the job failed, in one word; sent to every role"


class JobOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID | None = Field(description="null once the stream is deleted")
    status: str
    attempts: int
    error: str | None = Field(None, description=ERROR)
    error_category: ErrorCategory | None = Field(None, description=ERROR_CATEGORY)
    snapshot_id: uuid.UUID | None
    version: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobAccepted(BaseModel):
    job_id: uuid.UUID
    status: str
    status_url: str
    joined: bool = Field(description="true when the request joined a job already queued or running")


class SnapshotOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID
    job_id: uuid.UUID
    content_type: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    created_at: datetime
    image_url: str


class SnapshotPage(BaseModel):
    items: list[SnapshotOut]
    next_cursor: str | None = Field(description="send as ?cursor= for the next page; null: last")


class QuotasIn(Body):
    """Only the fields sent change; null resets one to the api's default."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"max_streams": 200, "snapshot_requests_per_minute": None}]}
    )

    max_streams: int | None = Field(None, ge=0, le=quotas.MAX_STREAMS_CEILING)
    snapshot_requests_per_minute: int | None = Field(None, ge=0, le=quotas.SNAPSHOT_RATE_CEILING)
    max_hot_streams: int | None = Field(None, ge=0, le=quotas.MAX_STREAMS_CEILING)


class QuotaOut(BaseModel):
    limit: int
    used: int | None = Field(description="null when the counter could not be read")
    default: bool = Field(description="true when the limit is the api's default")


class QuotasOut(BaseModel):
    tenant_id: uuid.UUID
    max_streams: QuotaOut
    snapshot_requests_per_minute: QuotaOut
    max_hot_streams: QuotaOut

    @classmethod
    def of(cls, usage: quotas.QuotaUsage) -> QuotasOut:
        q = usage.quotas
        return cls(
            tenant_id=usage.tenant_id,
            max_streams=QuotaOut(
                limit=q.max_streams, used=usage.streams_used, default=q.max_streams_is_default
            ),
            snapshot_requests_per_minute=QuotaOut(
                limit=q.snapshot_requests_per_minute,
                used=usage.snapshot_requests_this_minute,
                default=q.snapshot_rate_is_default,
            ),
            max_hot_streams=QuotaOut(
                limit=q.max_hot_streams,
                used=usage.hot_streams_used,
                default=q.max_hot_streams_is_default,
            ),
        )


class FailedJobOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID | None
    error: str | None = Field(None, description=ERROR)
    error_category: ErrorCategory | None = Field(None, description=ERROR_CATEGORY)
    attempts: int
    finished_at: datetime | None


class ErrorStreamOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    last_error: str | None = Field(None, description=LAST_ERROR)
    last_error_category: ErrorCategory | None = Field(None, description=LAST_ERROR_CATEGORY)
    updated_at: datetime


class OutboxOut(BaseModel):
    unpublished: int
    oldest_age_seconds: float | None


class QueuesOut(BaseModel):
    outbox: OutboxOut
    rabbitmq: dict[str, int] | None = Field(
        description="messages ready in each work queue; null when the broker is not connected"
    )


class DashboardCounts(BaseModel):
    source: Literal["counts", "sql"] = Field(
        description="counts: the aggregator's counts in Redis; sql: counted in Postgres"
    )
    counts: dict[str, int]


class DriftOut(BaseModel):
    checked_at: datetime
    mode: str = Field(description="sampled (a random sample of tenants) or full")
    scopes: int = Field(description="tenants (and the platform) whose counts differed")
    fields: int = Field(description="count fields that differed; 0 and 0: the counts match")


class DashboardOut(BaseModel):
    scope: str = Field(description="the tenant id, or 'platform' for a superuser")
    counts: DashboardCounts
    failed_jobs: list[FailedJobOut]
    error_streams: list[ErrorStreamOut]
    queues: QueuesOut
    health: dict[str, bool]
    quotas: QuotasOut | None = Field(description="null for the platform scope")
    drift: DriftOut | None = Field(
        None, description="the count drift check's last result; null before the first check"
    )
