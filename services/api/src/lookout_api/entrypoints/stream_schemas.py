"""Request and response bodies of the stream routes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from lookout_shared.contracts import ErrorCategory
from lookout_shared.stream_urls import mask_credentials
from pydantic import BaseModel, ConfigDict, Field

from lookout_api.domain.listing import FIELDS
from lookout_api.entrypoints.schemas import Body

Name = Field(min_length=1, max_length=200)
Url = Field(
    min_length=1,
    max_length=2048,
    description="rtsp(s), rtmp, http(s); file: only in the media directory",
)
LAST_ERROR = "why the source last failed, in detail (host, path); never sent to viewers"
LAST_ERROR_CATEGORY = "why the source last failed, in one word; sent to every role"
HOT = "a worker holds the stream open and keeps its latest frame (counted in a tenant quota)"
HOT_MODE = "what a hot stream's worker decodes: keyframes only, or every frame"
HotMode = Literal["keyframes", "all"]


class StreamIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Gate 3",
                    "url": "rtsp://camera.example/stream1",
                    "tags": ["gate", "north"],
                }
            ]
        }
    )

    name: str = Name
    url: str = Url
    tags: list[str] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    tenant_id: uuid.UUID | None = Field(None, description="superusers only: the tenant to act in")


class StreamPatch(Body):
    """Only the fields sent change."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Gate 3 (north)", "enabled": False}]}
    )

    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, min_length=1, max_length=2048)
    tags: list[str] | None = Field(None, max_length=20)
    enabled: bool | None = None
    hot: bool | None = Field(None, description=HOT)
    hot_mode: HotMode | None = Field(None, description=HOT_MODE)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class StreamOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    url: str | None = Field(
        None, description="credentials masked; never sent to viewers (it locates the camera)"
    )
    kind: str
    tags: list[str]
    enabled: bool
    status: str
    last_error: str | None = Field(None, description=LAST_ERROR)
    last_error_category: ErrorCategory | None = Field(None, description=LAST_ERROR_CATEGORY)
    width: int | None
    height: int | None
    codec: str | None
    hot: bool = Field(description=HOT)
    hot_mode: HotMode = Field(description=HOT_MODE)
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any, fields: Sequence[str] = FIELDS) -> StreamOut:
        """The row's ``fields`` (every field but those for operators at least); ``url``
        masked."""
        data = {k: row[k] for k in fields}
        if "url" in data:
            data["url"] = mask_credentials(data["url"])
        return cls.model_validate(data)


class StreamItem(BaseModel):
    """A stream in a list: every field, or only those named by ``fields=`` (and ``id``)."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    name: str | None = None
    url: str | None = Field(None, description="credentials masked; never sent to viewers")
    kind: str | None = None
    tags: list[str] | None = None
    enabled: bool | None = None
    status: str | None = None
    last_error: str | None = Field(None, description=LAST_ERROR)
    last_error_category: ErrorCategory | None = Field(None, description=LAST_ERROR_CATEGORY)
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    hot: bool | None = None
    hot_mode: HotMode | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class StreamPage(BaseModel):
    items: list[StreamItem]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )
    total: int = Field(description="matching streams (a lower bound when total_is_exact is false)")
    total_is_exact: bool
    total_source: Literal["counts", "sql"] = Field(
        description="counts: the aggregator's live counts; sql: counted (capped at 10,000)"
    )


class BulkItemIn(Body):
    """No ``id``: create (name and url required). With ``id``: change the fields sent,
    if the stream is still at ``version`` (when given)."""

    id: uuid.UUID | None = None
    version: int | None = Field(None, ge=1)
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, min_length=1, max_length=2048)
    tags: list[str] | None = Field(None, max_length=20)
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True, exclude={"id", "version"})
        return {k: v for k, v in sent.items() if v is not None}


class BulkIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"name": "Gate 4", "url": "rtsp://camera.example/stream4"},
                        {
                            "id": "0b9f5f7e-4c5e-4c39-9f7e-2f1a6f3c1d2e",
                            "version": 3,
                            "enabled": False,
                        },
                    ]
                }
            ]
        }
    )

    items: list[BulkItemIn] = Field(min_length=1, max_length=500)
    tenant_id: uuid.UUID | None = Field(None, description="superusers only: the tenant to act in")


class BulkItemOut(BaseModel):
    index: int
    action: Literal["created", "updated", "unchanged"]
    stream: StreamOut


class BulkOut(BaseModel):
    items: list[BulkItemOut]
