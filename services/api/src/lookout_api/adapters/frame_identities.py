"""Each hot stream's latest frame identity (its ``captured_at``) kept in process, so a hot
``latest.jpg`` costs no Redis round trip.

A stream's identity changes only when a worker writes the stream's frame key
(lookout_shared.hot_frames). The read cache's invalidation channel (cache_tracking.py) tracks
the frame keys too, so Redis names the key the moment it is written, expires or is evicted,
and that stream's identity goes. The rules are the read cache's copies' (local_copies.py):
identities are served only while the channel is up and in sync, and one read from Redis
across an invalidation is not kept. So a newer frame is served as soon as its invalidation
arrives, and never later than the channel's heartbeat and timeout when Redis stalls.
"""

from __future__ import annotations

import uuid

# Only streams with a hot frame get here, and the tenants' quotas bound those; the cap
# bounds the memory should that ever change (past it a read just goes to Redis).
MAX_STREAMS = 100_000


class FrameIdentities:
    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self.max_streams = max_streams
        self.live = False  # the invalidation channel is up and in sync
        self.seq = 0  # moves on every invalidation, connect and disconnect
        self._captured: dict[bytes, float] = {}

    def get(self, stream_id: uuid.UUID) -> float | None:
        return self._captured.get(stream_id.bytes) if self.live else None

    def put(self, stream_id: uuid.UUID, captured_at: float, seq: int) -> None:
        """Keep the identity read from Redis if nothing was invalidated since ``seq``."""
        if self.live and seq == self.seq and len(self._captured) < self.max_streams:
            self._captured[stream_id.bytes] = captured_at

    def drop(self, stream_id: uuid.UUID) -> None:
        self.seq += 1
        self._captured.pop(stream_id.bytes, None)

    def drop_all(self) -> None:
        self.seq += 1
        self._captured.clear()

    def resume(self) -> None:
        """In sync again: start from nothing (invalidations sent while down are lost)."""
        self.drop_all()
        self.live = True

    def pause(self) -> None:
        self.live = False
        self.drop_all()
