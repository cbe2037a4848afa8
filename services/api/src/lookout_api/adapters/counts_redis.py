"""Reads the count hashes the count-aggregator maintains (it owns them; we only read).

Every read goes through one script that first checks the counts epoch
(``lookout_shared.counts_epoch``): counts of a Redis that lost state since the aggregator
last made them exact (flushed, restarted, failed over) read as None, never as numbers.
"""

from __future__ import annotations

import uuid
from typing import Any

from lookout_shared.count_keys import scope_key
from lookout_shared.counts_epoch import READ_COUNTS_LUA, epoch_key
from lookout_shared.redis import Keys
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


async def read_counts(
    redis: Redis, keys: Keys, tenant_id: uuid.UUID | None
) -> dict[str, int] | None:
    """The scope's counts ({} when it has none), or None when they are not trusted."""
    return decode_counts(await _read(redis, keys, tenant_id, ()))


def queue_counts(keys: Keys, tenant_id: uuid.UUID | None, pipe: Pipeline) -> None:
    """Queue the same read in ``pipe``; decode its reply with :func:`decode_counts`. As a
    plain EVAL: a script registered with the pipeline would cost a SCRIPT EXISTS round trip
    on every execution."""
    pipe.eval(READ_COUNTS_LUA, 2, epoch_key(keys), scope_key(keys, tenant_id))


def decode_counts(reply: Any) -> dict[str, int] | None:
    if reply is None:
        return None
    raw = reply[1]
    return {_text(raw[i]): int(raw[i + 1]) for i in range(0, len(raw), 2)}


async def read_fields(
    redis: Redis, keys: Keys, tenant_id: uuid.UUID | None, *fields: str
) -> tuple[str, list[int | None]] | None:
    """(the epoch id, the fields' values; None where a field is absent: the aggregator drops
    zeros), or None when the counts are not trusted."""
    reply = await _read(redis, keys, tenant_id, fields)
    if reply is None:
        return None
    return _text(reply[0]), [None if v is None else int(v) for v in reply[1]]


async def _read(
    redis: Redis,
    keys: Keys,
    tenant_id: uuid.UUID | None,
    fields: tuple[str, ...],
) -> Any:
    script = redis.register_script(READ_COUNTS_LUA)
    return await script(keys=[epoch_key(keys), scope_key(keys, tenant_id)], args=fields)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
