"""The aggregator's side of the counts epoch (see ``lookout_shared.counts_epoch``): read it,
and write a new one at the end of a full rebuild, but only if Redis lost nothing meanwhile.

A full rebuild opens with :meth:`EpochStore.begin`, which leaves a random token in Redis and
notes the server's ``run_id``. :meth:`EpochStore.finish` writes the epoch only if the token
is still there (no flush since) and the ``run_id`` is unchanged (no restart or failover
since); otherwise the rebuild's result cannot be trusted and the next check rebuilds again.
"""

from __future__ import annotations

import time

from lookout_shared.count_keys import CountKeys
from lookout_shared.counts_epoch import CURRENT_EPOCH_LUA
from redis.asyncio import Redis

RUN_ID_LUA = "string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')"

# KEYS[1] the epoch. Returns the current epoch's id, '' when the counts are not trusted.
CURRENT = CURRENT_EPOCH_LUA + "return current_epoch(KEYS[1])"

# KEYS[1] the pending token key; ARGV[1] the token. Returns the server's run_id.
BEGIN = f"""
redis.call('SET', KEYS[1], ARGV[1])
return {RUN_ID_LUA}
"""

# KEYS[1] the epoch, KEYS[2] the pending token key; ARGV[1] the token, ARGV[2] the run_id
# noted by begin, ARGV[3] the time. Returns 1 if the epoch was written, else 0.
FINISH = f"""
if {RUN_ID_LUA} ~= ARGV[2] or redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'run_id', ARGV[2], 'id', ARGV[1], 'rebuilt_at', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""


class EpochStore:
    def __init__(self, redis: Redis, keys: CountKeys) -> None:
        self._keys = keys
        self._current = redis.register_script(CURRENT)
        self._begin = redis.register_script(BEGIN)
        self._finish = redis.register_script(FINISH)

    async def current(self) -> str:
        """The id of the epoch the counts are exact under; '' when they are not trusted."""
        return _text(await self._current(keys=[self._keys.epoch()]))

    async def begin(self, token: str) -> str:
        """Open a full rebuild; returns the ``run_id`` to hand to :meth:`finish`."""
        return _text(await self._begin(keys=[self._keys.epoch_pending()], args=[token]))

    async def finish(self, token: str, run_id: str) -> bool:
        """Trust the counts under ``token`` as a new epoch, if Redis lost nothing since
        :meth:`begin`; False otherwise."""
        written = await self._finish(
            keys=[self._keys.epoch(), self._keys.epoch_pending()],
            args=[token, run_id, f"{time.time():.3f}"],
        )
        return bool(written)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
