"""In-memory twin of the room history, for unit tests and single-process experiments."""

from __future__ import annotations

import uuid
from collections import defaultdict, deque
from collections.abc import Sequence

from lookout_notifier.domain.history import Replay, StoredFrame, replay_from
from lookout_notifier.domain.rooms import GONE, Owner, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.ports import Record


class MemoryRoomHistory:
    def __init__(self, history_size: int = 500) -> None:
        self.seqs: dict[Room, int] = defaultdict(int)
        self.frames: dict[Room, deque[StoredFrame]] = defaultdict(
            lambda: deque(maxlen=history_size)
        )
        self.owners: dict[uuid.UUID, Owner] = {}
        self._seen: dict[tuple[uuid.UUID, Room], int] = {}

    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[int]:
        seqs = []
        for rec in records:
            key = (event_id, rec.room)
            if key not in self._seen:
                self.seqs[rec.room] += 1
                seq = self._seen[key] = self.seqs[rec.room]
                self.frames[rec.room].append(StoredFrame(seq, rec.tenant_id, rec.frame.text(seq)))
            seqs.append(self._seen[key])
        for fact in owners:
            known = self.owners.get(fact.entity_id)
            if fact.action == "forget":
                self.owners[fact.entity_id] = GONE
            elif (fact.action == "keep" and known != GONE) or known is None:
                self.owners[fact.entity_id] = fact.tenant_id
        return seqs

    async def current_seq(self, room: Room) -> int:
        return self.seqs[room]

    async def replay(self, room: Room, since: int) -> Replay:
        return replay_from(self.seqs[room], list(self.frames[room]), since)

    async def owner_of(self, entity_id: uuid.UUID) -> Owner:
        return self.owners.get(entity_id)

    async def ping(self) -> object:
        return True


class MemoryConnectionSlots:
    """In-memory twin of the shared per-user connection slots (no leases: one process)."""

    def __init__(self) -> None:
        self.held: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)

    async def acquire(self, user_id: uuid.UUID, conn_id: uuid.UUID, limit: int) -> bool:
        if len(self.held[user_id]) >= limit:
            return False
        self.held[user_id].add(conn_id)
        return True

    async def release(self, user_id: uuid.UUID, conn_id: uuid.UUID) -> None:
        self.held[user_id].discard(conn_id)

    async def renew(self, held: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        return None
