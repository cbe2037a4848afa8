"""Request and response bodies of the REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from lookout_shared.stream_urls import mask_credentials
from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class TenantIn(Body):
    name: str = Field(min_length=1, max_length=200)


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class UserIn(Body):
    email: EmailStr
    password: str = Field(min_length=12, max_length=256)
    role: Literal["admin", "operator", "viewer"]
    tenant_id: uuid.UUID | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    email: str
    role: str
    created_at: datetime


class StreamIn(Body):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    tags: list[str] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    tenant_id: uuid.UUID | None = Field(None, description="superusers only: the tenant to act in")


class StreamOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    url: str = Field(description="credentials masked")
    kind: str
    tags: list[str]
    enabled: bool
    status: str
    last_error: str | None
    width: int | None
    height: int | None
    codec: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> StreamOut:
        data = dict(row)
        data["url"] = mask_credentials(data["url"])
        return cls.model_validate(data)


class StreamPage(BaseModel):
    items: list[StreamOut]
    next_cursor: str | None


class JobOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: uuid.UUID
    status: str
    attempts: int
    error: str | None
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


class CountsOut(BaseModel):
    scope: str
    counts: dict[str, int]
