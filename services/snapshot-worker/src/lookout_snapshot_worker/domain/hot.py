"""Rules of hot streams without I/O: how many streams each worker holds, which ones it takes
or lets go, and the frame records a reader child writes to its worker."""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest

# A frame record on the reader's stdout: captured_at (Unix seconds), width, height and the
# JPEG's length, then the JPEG.
FRAME_HEADER = struct.Struct("!dIII")


@dataclass(frozen=True)
class HotStream:
    """A stream some worker should hold open: what the reader needs, and whose it is."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    mode: str  # 'keyframes' or 'all'

    @property
    def source(self) -> tuple[str, str]:
        """What a running reader depends on: a new URL or mode means a new reader."""
        return (self.url, self.mode)


def target(hot: int, live_workers: int, capacity: int) -> int:
    """How many streams one worker should hold: an even share (rounded up, so the shares
    cover every stream), never more than its capacity."""
    return min(capacity, math.ceil(hot / max(live_workers, 1)))


def fair_order(streams: Iterable[HotStream]) -> list[HotStream]:
    """Streams taken one tenant after another (round robin, by stream id within a tenant):
    a worker that can hold only some of the free streams does not give them all to the
    tenant with the most hot streams."""
    by_tenant: dict[uuid.UUID, list[HotStream]] = {}
    for stream in sorted(streams, key=lambda s: (s.tenant_id, s.id)):
        by_tenant.setdefault(stream.tenant_id, []).append(stream)
    rounds = zip_longest(*by_tenant.values())
    return [s for turn in rounds for s in turn if s is not None]


@dataclass(frozen=True)
class Plan:
    release: list[uuid.UUID]
    candidates: list[HotStream]  # to try in this order, until ``room`` are taken
    room: int


def plan(held: Sequence[uuid.UUID], hot: Sequence[HotStream], goal: int) -> Plan:
    """What to let go of (no longer hot, or beyond ``goal``) and which others to try to
    take, in fair order, up to ``goal``. Whether a stream is free is the lease's to say."""
    wanted = {s.id for s in hot}
    keep = [sid for sid in held if sid in wanted]
    gone = [sid for sid in held if sid not in wanted]
    order = {s.id: i for i, s in enumerate(fair_order(hot))}
    keep.sort(key=lambda sid: order[sid])
    excess = keep[goal:]
    room = max(goal - len(keep), 0)
    mine = set(held)
    candidates = [s for s in fair_order(hot) if s.id not in mine]
    return Plan(release=gone + excess, candidates=candidates, room=room)


def pack_frame(captured_at: float, width: int, height: int, jpeg: bytes) -> bytes:
    return FRAME_HEADER.pack(captured_at, width, height, len(jpeg)) + jpeg
