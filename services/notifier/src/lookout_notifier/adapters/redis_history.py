"""Room history in Redis, shared by every notifier instance so any of them can replay.

Per room: ``notifier:room:<room>`` (a hash: ``epoch``, a random id, and ``seq``, the
counter), ``notifier:history:<room>`` (a list of ``"<seq> <tenant|-> <frame>"`` capped at
history_size, expiring history_ttl after the last event) and, per event and room,
``notifier:seen:<event>:<room>`` holding ``"<seq> <epoch>"``, so the N instances that each
receive an event agree on one seq and append it once.
``notifier:owner:<id>`` maps a stream or job to its tenant: without expiry when the
stream's own events said so (until stream.deleted turns it into ``gone`` for a while),
expiring when only learned from a job or snapshot event.

Epochs (see domain.history): the script starts a new epoch for a room when its hash is
missing (a new room, or one Redis lost) or holds a counter below the seq this instance
already saw in the same epoch (Redis restored from an older snapshot). The new epoch drops
the history of the abandoned numbering and continues above the highest seq this instance
knew, so a connected client's seqs keep growing. An instance knows what it numbered,
fanned out or read since it started; if no running instance knew the room, the new
epoch starts at 1 and only the epoch tells clients apart.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from lookout_shared.redis import Keys
from redis.asyncio import Redis

from lookout_notifier.domain.history import (
    KnownPositions,
    Position,
    Replay,
    StoredFrame,
    replay_from,
)
from lookout_notifier.domain.rooms import GONE, Owner, Room
from lookout_notifier.domain.routing import OwnerFact
from lookout_notifier.ports import Record

# The counter outlives the history by far, so a reconnecting client's ``since`` stays
# meaningful; if it does expire, the room gets a new epoch and replay answers
# recovered=false.
SEQ_TTL_SECONDS = 7 * 24 * 3600
# How long a hinted owner (job ids, streams seen only through their jobs) and a deleted
# stream's tombstone are kept.
OWNER_TTL_SECONDS = 30 * 24 * 3600
NO_TENANT = "-"
# Rooms whose last position one instance remembers (a few hundred bytes each).
KNOWN_ROOMS = 100_000

# KEYS: (room, history, seen) per room, then one owner key per owner fact.
# ARGV: size, ttl, seq_ttl, owner_ttl, n_rooms, a fresh epoch id, then per room (tenant,
# head, tail, known epoch or "", known seq), then (tenant, action) per owner fact: k(eep),
# h(int) or f(orget). Returns (seq, epoch, numbered) per room, flat: numbered 1 when this
# call numbered the event, 0 when it was numbered already; seq 0 for an event numbered in
# an epoch the room has since left (not to be delivered again).
_RECORD = """
local size, ttl, seq_ttl, owner_ttl, n, fresh = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local out = {}
for i = 0, n - 1 do
  local room_key, hist_key, seen_key = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local a = 7 + i * 5
  local epoch = redis.call('HGET', room_key, 'epoch')
  local seen, given, given_epoch = redis.call('GET', seen_key), nil, nil
  if seen then given, given_epoch = string.match(seen, '^(%d+) (.+)$') end
  local seq, numbered = nil, 0
  if given_epoch then
    seq = (given_epoch == epoch) and tonumber(given) or 0
  else  -- not numbered yet (or by a version without epochs: numbered afresh)
    local known_epoch, known_seq = ARGV[a + 3], tonumber(ARGV[a + 4])
    local counter = tonumber(redis.call('HGET', room_key, 'seq') or '0')
    if not epoch or (epoch == known_epoch and counter < known_seq) then
      epoch = fresh
      redis.call('DEL', hist_key)
      redis.call('HSET', room_key, 'epoch', epoch, 'seq', known_seq)
    end
    seq, numbered = redis.call('HINCRBY', room_key, 'seq', 1), 1
    redis.call('EXPIRE', room_key, seq_ttl)
    local frame = ARGV[a + 1] .. seq .. ',"epoch":"' .. epoch .. '"' .. ARGV[a + 2]
    redis.call('RPUSH', hist_key, seq .. ' ' .. ARGV[a] .. ' ' .. frame)
    redis.call('LTRIM', hist_key, -size, -1)
    redis.call('EXPIRE', hist_key, ttl)
    redis.call('SET', seen_key, seq .. ' ' .. epoch, 'EX', ttl)
  end
  out[i * 3 + 1], out[i * 3 + 2], out[i * 3 + 3] = seq, epoch or '', numbered
end
local base = 7 + n * 5
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
return out
"""


class RedisRoomHistory:
    def __init__(self, redis: Redis, prefix: str, history_size: int, history_ttl: int) -> None:
        self._redis = redis
        self._key = Keys(prefix)
        self._size, self._ttl = history_size, history_ttl
        self._record = redis.register_script(_RECORD)
        self._known = KnownPositions(KNOWN_ROOMS)

    def _room(self, room: Room) -> str:
        return self._key("notifier", "room", room)

    def _history(self, room: Room) -> str:
        return self._key("notifier", "history", room)

    def _owner(self, entity_id: uuid.UUID) -> str:
        return self._key("notifier", "owner", entity_id)

    async def record(
        self, event_id: uuid.UUID, records: Sequence[Record], owners: Sequence[OwnerFact]
    ) -> list[Position]:
        if not records and not owners:
            return []
        keys: list[str] = []
        args: list[str | int] = [self._size, self._ttl, SEQ_TTL_SECONDS, OWNER_TTL_SECONDS]
        args += [len(records), secrets.token_hex(6)]
        for rec in records:
            keys += [
                self._room(rec.room),
                self._history(rec.room),
                self._key("notifier", "seen", event_id, rec.room),
            ]
            known = self._known.get(str(rec.room)) or Position(None, 0)
            args += [_tenant(rec.tenant_id), rec.frame.head, rec.frame.tail]
            args += [known.epoch or "", known.seq]
        for fact in owners:
            keys.append(self._owner(fact.entity_id))
            args += [str(fact.tenant_id), fact.action[0]]
        try:
            out = await self._record(keys=keys, args=args)
        except BaseException:
            self._known.pause()  # Redis in trouble: nothing is predicted for a while
            raise
        positions = []
        for i, rec in enumerate(records):
            seq, epoch, numbered = out[i * 3 : i * 3 + 3]
            position = Position(_text(epoch) or None, int(seq))
            self._known.numbered(str(rec.room), position, fresh=bool(int(numbered)))
            positions.append(position)
        return positions

    def predict(self, room: Room) -> Position | None:
        return self._known.predict(str(room))

    async def current(self, room: Room) -> Position:
        epoch, seq = await self._redis.hmget(self._room(room), ["epoch", "seq"])
        return self._saw(room, epoch, seq)

    async def replay(self, room: Room, since: int, epoch: str | None = None) -> Replay:
        # One MULTI so the numbering and the list are read at the same instant.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self._room(room), ["epoch", "seq"])
            pipe.lrange(self._history(room), 0, -1)
            (current_epoch, seq), raw = await pipe.execute()
        frames = [_parse(entry) for entry in raw]
        return replay_from(self._saw(room, current_epoch, seq), frames, since, epoch)

    def _saw(self, room: Room, epoch: bytes | str | None, seq: bytes | str | None) -> Position:
        position = Position(_text(epoch) or None, int(seq) if seq is not None else 0)
        self._known.saw(str(room), position)
        return position

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


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _parse(entry: bytes) -> StoredFrame:
    seq, tenant, text = entry.decode().split(" ", 2)
    return StoredFrame(int(seq), None if tenant == NO_TENANT else uuid.UUID(tenant), text)
