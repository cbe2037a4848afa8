"""Request and response bodies of the signed image URL routes (routes/images.py)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from lookout_api.domain import signed_urls
from lookout_api.entrypoints.schemas import Body

MAX_BATCH = 200
DEFAULT_TTL = 3600


class ImageUrlsIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ttl_seconds": 3600}]})

    ttl_seconds: int = Field(
        DEFAULT_TTL,
        ge=signed_urls.MIN_TTL_SECONDS,
        le=signed_urls.MAX_TTL_SECONDS,
        description="how long the URLs open the images",
    )


class BatchImageUrlsIn(ImageUrlsIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"stream_ids": ["3f8e2c1a-5b7d-4e9f-8a6b-2c4d6e8f0a1b"], "ttl_seconds": 3600}
            ]
        }
    )

    stream_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BATCH)


class ImageUrlsOut(BaseModel):
    stream_id: uuid.UUID
    latest_jpg: str = Field(description="latest.jpg; add &width=, &height=, &quality= freely")
    latest_snapshot: str = Field(description="the latest stored snapshot's image")
    expires_at: int = Field(description="Unix seconds; the URLs answer 403 from then on")


class BatchImageUrlsOut(BaseModel):
    items: list[ImageUrlsOut]
