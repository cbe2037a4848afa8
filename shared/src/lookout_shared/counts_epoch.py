"""The counts epoch: whether the count hashes in Redis may be trusted, a contract between the
count-aggregator (which writes it) and the api (which checks it on every counts read).

Redis can lose acknowledged increments without anyone noticing: ``FLUSHALL``, a restart
that loads an older snapshot (or none), a failover to a replica that lagged. Counts read from
such a Redis look plausible and are wrong. So the counts are trusted only under an epoch:

- ``{prefix}counts:epoch`` is a hash ``{run_id, id, rebuilt_at}`` that a full rebuild writes
  when it has made the counts exact from Postgres: ``run_id`` is the Redis server's own
  ``run_id`` (``INFO server``) at that moment, ``id`` a random id of that rebuild.
- A counts read checks, in the same server-side script as the read, that the epoch's
  ``run_id`` is the server's current one. A flush removes the hash; any restart (whatever
  snapshot it loads) or failover gives the server a new ``run_id``, which no snapshot can
  contain. Either way the check fails and the reader counts in Postgres instead.
- The aggregator checks the same thing every few seconds and after every reconnect; when it
  fails, it runs a full rebuild (events keep flowing) which writes a new epoch.

The check costs one ``INFO server`` inside the script (a few microseconds of Redis time).
"""

from __future__ import annotations

from lookout_shared.redis import Keys


def epoch_key(keys: Keys) -> str:
    return keys("counts", "epoch")


# Lua, to be prepended to a script: ``current_epoch(key)`` is the id of the epoch stored at
# ``key`` if it was written by this very Redis process, else '' (the counts are not trusted).
CURRENT_EPOCH_LUA = """
local function current_epoch(key)
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  local epoch = redis.call('HMGET', key, 'run_id', 'id')
  if run and epoch[1] == run and epoch[2] then return epoch[2] end
  return ''
end
"""

# KEYS[1] the epoch, KEYS[2] a count hash; ARGV: the fields to read (none: the whole hash).
# Returns false (nil) when the counts are not trusted, else {epoch id, HGETALL or HMGET}.
READ_COUNTS_LUA = (
    CURRENT_EPOCH_LUA
    + """
local epoch = current_epoch(KEYS[1])
if epoch == '' then return false end
if #ARGV == 0 then return {epoch, redis.call('HGETALL', KEYS[2])} end
return {epoch, redis.call('HMGET', KEYS[2], unpack(ARGV))}
"""
)
