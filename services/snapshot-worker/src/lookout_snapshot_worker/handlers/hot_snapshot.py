"""A capture of a hot stream: its holder's latest frame, when fresh, is the snapshot."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from lookout_snapshot_worker import metrics
from lookout_snapshot_worker.ports import HotFrames

log = logging.getLogger(__name__)


async def fresh_hot_frame(
    frames: HotFrames | None, stream_id: uuid.UUID, max_age: float, now: datetime
) -> bytes | None:
    """The stream's published frame if it is at most ``max_age`` seconds old: stored at once,
    with no ffmpeg run. Any worker can answer so, since the frame is in Redis; a frame
    missing, stale or unreadable (Redis down) means a cold capture as before."""
    if frames is None:
        return None
    try:
        frame = await frames.latest(stream_id)
    except Exception:
        log.warning("could not read the hot frame of stream %s; capturing cold", stream_id)
        return None
    if frame is None or not 0 <= now.timestamp() - frame.captured_at <= max_age:
        return None
    metrics.HOT_SNAPSHOTS.inc()
    return frame.jpeg
