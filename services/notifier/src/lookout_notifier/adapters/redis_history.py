"""Room history in Redis, shared by every notifier instance so any of them can replay.

Per room: ``notifier:seq:<room>`` (INCR counter), ``notifier:history:<room>`` (a list of
``"<seq> <tenant|-> <frame>"`` capped at history_size, expiring history_ttl after the last
event) and, per event and room, ``notifier:seen:<event>:<room>`` holding the seq given, so
the N instances that each receive an event agree on one seq and append it once.
``notifier:owner:<id>`` maps a stream or job to its tenant: without expiry when the
stream's own events said so (until stream.deleted turns it into ``gone`` for a while),
expiring when only learned from a job or snapshot event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from lookout_shared.redis import Keys
from redis.asyncio import Redis

from lookout_notifier.domain.history import Replay, StoredFrame, replay_from
from lookout_notifier.domain.rooms import GONE, Owner, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.ports import Record

# The counter outlives the history by far, so a reconnecting client's ``since`` stays
# meaningful; if it does expire, replay_from answers recovered=false.
SEQ_TTL_SECONDS = 7 * 24 * 3600
# How long a hinted owner (job ids, streams seen only through their jobs) and a deleted
# stream's tombstone are kept.
OWNER_TTL_SECONDS = 30 * 24 * 3600
NO_TENANT = "-"

# KEYS: (seq, history, seen) per room, then one owner key per owner fact.
# ARGV: size, ttl, seq_ttl, owner_ttl, n_rooms, then (tenant, head, tail) per room, then
# (tenant, action) per owner fact: k(eep), h(int) or f(orget).
_RECORD = """
local size, ttl, seq_ttl, owner_ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local seqs = {}
for i = 0, n - 1 do
  local seq_key, hist_key, seen_key = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local seen = redis.call('GET', seen_key)
  if seen then
    seqs[i + 1] = tonumber(seen)
  else
    local seq = redis.call('INCR', seq_key)
    redis.call('EXPIRE', seq_key, seq_ttl)
    local a = 6 + i * 3
    redis.call('RPUSH', hist_key, seq .. ' ' .. ARGV[a] .. ' ' .. ARGV[a + 1] .. seq .. ARGV[a + 2])
    redis.call('LTRIM', hist_key, -size, -1)
    redis.call('EXPIRE', hist_key, ttl)
    redis.call('SET', seen_key, seq, 'EX', ttl)
    seqs[i + 1] = seq
  end
end
local base = 6 + n * 3
for j = 0, #KEYS - n * 3 - 1 do
  local key, tenant, action = KEYS[n * 3 + 1 + j], ARGV[base + j * 2], ARGV[base + j * 2 + 1]
  if action == 'f' then
    redis.call('SET', key, 'gone', 'EX', owner_ttl)
  elseif action == 'k' then
    if redis.call('GET', key) ~= 'gone' then redis.call('SET', key, tenant) end
  else
    redis.call('SET', key, tenant, 'NX', 'EX', owner_ttl)
  end
end
return seqs
"""


class RedisRoomHistory:
    def __init__(self, redis: Redis, prefix: str, history_size: int, history_ttl: int) -> None:
        self._redis = redis
        self._key = Keys(prefix)
        self._size, self._ttl = history_size, history_ttl
        self._record = redis.register_script(_RECORD)

    def _seq(self, room: Room) -> str:
        return self._key("notifier", "seq", room)

    def _history(self, room: Room) -> str:
        return self._key("notifier", "history", room)

    def _owner(self, entity_id: uuid.UUID) -> str:
        return self._key("notifier", "owner", entity_id)

    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[int]:
        if not records and not owners:
            return []
        keys: list[str] = []
        args: list[str | int] = [self._size, self._ttl, SEQ_TTL_SECONDS, OWNER_TTL_SECONDS]
        args.append(len(records))
        for rec in records:
            keys += [
                self._seq(rec.room),
                self._history(rec.room),
                self._key("notifier", "seen", event_id, rec.room),
            ]
            args += [_tenant(rec.tenant_id), rec.frame.head, rec.frame.tail]
        for fact in owners:
            keys.append(self._owner(fact.entity_id))
            args += [str(fact.tenant_id), fact.action[0]]
        seqs = await self._record(keys=keys, args=args)
        return [int(s) for s in seqs]

    async def current_seq(self, room: Room) -> int:
        value = await self._redis.get(self._seq(room))
        return int(value) if value is not None else 0

    async def replay(self, room: Room, since: int) -> Replay:
        # One MULTI so the counter and the list are read at the same instant.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._seq(room))
            pipe.lrange(self._history(room), 0, -1)
            current, raw = await pipe.execute()
        frames = [_parse(entry) for entry in raw]
        return replay_from(int(current) if current is not None else 0, frames, since)

    async def owner_of(self, entity_id: uuid.UUID) -> Owner:
        value = await self._redis.get(self._owner(entity_id))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else value
        return GONE if text == GONE else uuid.UUID(text)

    async def ping(self) -> object:
        return await self._redis.ping()


def _tenant(tenant_id: uuid.UUID | None) -> str:
    return str(tenant_id) if tenant_id is not None else NO_TENANT


def _parse(entry: bytes) -> StoredFrame:
    seq, tenant, text = entry.decode().split(" ", 2)
    return StoredFrame(int(seq), None if tenant == NO_TENANT else uuid.UUID(tenant), text)
