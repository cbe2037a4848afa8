"""The latest frame of a stream as a resized JPEG, and signed URLs that open it.

A hot stream's frame comes from Redis (the worker holding the stream publishes it); any
other stream's from its latest stored snapshot. Either way the image is encoded once per
(frame, request) and kept until the next frame (adapters/frame_encoder.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from lookout_shared.hot_frames import HotFrame
from lookout_shared.signed_urls import Kind, signed_url

from lookout_api.domain import frames, signed_urls
from lookout_api.domain.errors import NotFound
from lookout_api.domain.frames import Encoded
from lookout_api.handlers.redis_outage import log_unavailable
from lookout_api.ports import Deps, RedisUnavailable, UndecodableFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """The latest frame: where it came from, when it was captured, and its validator."""

    stream_id: uuid.UUID
    source: frames.Source
    captured_at: float  # Unix seconds
    etag: str
    hot: HotFrame | None = None
    snapshot_path: str | None = None

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.captured_at)


async def stream_tenant(deps: Deps, stream_id: uuid.UUID, scope: uuid.UUID | None) -> uuid.UUID:
    """The stream's tenant; 404 when there is no such stream in ``scope`` (None: any)."""
    hit, tenant = deps.stream_tenants.get(stream_id.bytes)
    if not hit or tenant is None:
        epoch = deps.stream_tenants.epoch
        async with deps.db.connect() as session:
            row = await session.get_stream(stream_id, None)
        if row is None:
            raise NotFound("no such stream")
        tenant = str(row["tenant_id"])
        deps.stream_tenants.put(stream_id.bytes, tenant, epoch)
    if scope is not None and str(scope) != tenant:
        raise NotFound("no such stream")
    return uuid.UUID(tenant)


async def latest_frame(
    deps: Deps, scope: uuid.UUID | None, stream_id: uuid.UUID, asked: frames.FrameRequest
) -> Frame:
    """Which frame answers: the hot one if a worker publishes it, else the latest snapshot."""
    tenant = await stream_tenant(deps, stream_id, scope)
    hot = await _hot_frame(deps, stream_id)
    if hot is not None:
        tag = frames.etag(stream_id, hot.captured_at, asked)
        return Frame(stream_id, "hot", hot.captured_at, tag, hot=hot)
    async with deps.db.connect() as session:
        row = await session.latest_snapshot(stream_id, tenant)
    if row is None:
        raise NotFound("no frame yet: the stream is not hot and has no snapshot")
    captured_at = row["created_at"].timestamp()
    path = deps.storage.path_of(row["storage_key"])
    tag = frames.etag(stream_id, captured_at, asked)
    return Frame(stream_id, "snapshot", captured_at, tag, snapshot_path=str(path))


async def encoded(deps: Deps, frame: Frame, asked: frames.FrameRequest) -> Encoded:
    """The frame resized and encoded as asked (once per frame and request)."""

    async def load() -> bytes:
        if frame.hot is not None:
            return frame.hot.jpeg
        assert frame.snapshot_path is not None
        try:
            return await asyncio.to_thread(_read, frame.snapshot_path)
        except FileNotFoundError:
            raise NotFound("the snapshot's file is missing from storage") from None

    key = encoded_key(frame.stream_id, frame.source, frame.captured_at, asked)
    try:
        return await deps.frames.get(key, load, asked)
    except UndecodableFrame as exc:
        log.warning(
            "latest frame of stream %s cannot be decoded: %r", frame.stream_id, exc.__cause__
        )
        raise NotFound("the latest frame cannot be decoded") from None


def encoded_key(
    stream_id: uuid.UUID, source: frames.Source, captured_at: float, asked: frames.FrameRequest
) -> tuple[object, ...]:
    """What an encoded image is kept under: it changes with the frame and what was asked."""
    return (stream_id, source, captured_at, asked)


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


async def _hot_frame(deps: Deps, stream_id: uuid.UUID) -> HotFrame | None:
    """The frame a worker published, if any (the snapshot answers without Redis)."""
    try:
        return await deps.hot_frames.latest(stream_id)
    except RedisUnavailable as exc:
        log_unavailable(log, "hot frame unavailable, answering from the snapshot: %r", exc)
        return None


@dataclass(frozen=True)
class SignedUrls:
    stream_id: uuid.UUID
    latest_jpg: str
    latest_snapshot: str
    expires_at: int


async def signed_urls_for(
    deps: Deps, scope: uuid.UUID | None, stream_ids: list[uuid.UUID], ttl_seconds: int
) -> list[SignedUrls]:
    """Signed image URLs for each stream (404 if any is not the caller's)."""
    signed_urls.check_ttl(ttl_seconds)
    exp = int(time.time()) + ttl_seconds
    key, base = deps.settings.signing_key(), deps.settings.public_url
    out = []
    for stream_id in stream_ids:
        tenant = await stream_tenant(deps, stream_id, scope)
        out.append(
            SignedUrls(
                stream_id,
                signed_url(base, key, tenant, stream_id, "latest_jpg", exp),
                signed_url(base, key, tenant, stream_id, "latest_snapshot", exp),
                exp,
            )
        )
    return out


async def check_signed(
    deps: Deps, stream_id: uuid.UUID, kind: Kind, exp: str, sig: str
) -> uuid.UUID:
    """The tenant a valid signed URL opens; 403 for a bad or expired one, 404 without the
    stream."""
    tenant = await stream_tenant(deps, stream_id, None)
    signed_urls.verify(deps.settings.signing_key(), tenant, stream_id, kind, exp, sig, time.time())
    return tenant
