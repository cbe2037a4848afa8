"""Request and response bodies of the webhook routes (routes/webhooks.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from lookout_api.entrypoints.schemas import Body


class WebhookIn(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.net/lookout",
                    "events": ["stream.created", "stream.deleted", "snapshot_job.failed"],
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=32)
    secret: str | None = Field(default=None, min_length=24, max_length=256)
    tenant_id: uuid.UUID | None = None  # a superuser names the tenant


class WebhookOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime
    disabled: bool


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown in this answer only")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
