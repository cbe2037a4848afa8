"""Reading the latest frame a worker published for a hot stream (lookout_shared.hot_frames)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import cast

from lookout_shared.hot_frames import HotFrame, frame_key, from_fields
from lookout_shared.redis import Keys
from redis.asyncio import Redis


async def latest(redis: Redis, keys: Keys, stream_id: uuid.UUID) -> HotFrame | None:
    raw = await redis.hgetall(frame_key(keys, stream_id))
    # The client answers bytes (decode_responses=False, lookout_shared.redis).
    return from_fields(cast(Mapping[bytes, bytes], raw)) if raw else None


async def captured_at(redis: Redis, keys: Keys, stream_id: uuid.UUID) -> float | None:
    """When the latest hot frame was captured (its identity), without reading the frame;
    None when there is none (or it is malformed)."""
    raw = await redis.hget(frame_key(keys, stream_id), "captured_at")
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None
