"""Deleting snapshot files whose rows are gone: after retention commits, and by a sweep.

Files are content-addressed, so two snapshots (of a still camera) may share one file: a
file goes only when no row references its key. The check and the unlink happen under a
transaction-scoped advisory lock on the key, which the insert of a row with that key takes
too (see PostgresJobStore), so a file is never deleted under a row being committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from lookout_snapshot_worker.adapters.files import is_temporary
from lookout_snapshot_worker.ports import FileStore

log = logging.getLogger(__name__)

KEY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('snapshot-file:' || $1, 0))"


class PostgresReaper:
    def __init__(self, pool: asyncpg.Pool, files: FileStore) -> None:
        self._pool = pool
        self._files = files

    async def release(self, keys: Sequence[str]) -> int:
        deleted = 0
        for key in dict.fromkeys(keys):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(KEY_LOCK, key)
                if await conn.fetchval("SELECT 1 FROM snapshots WHERE storage_key = $1", key):
                    continue
                await self._files.delete(key)
                deleted += 1
        return deleted

    async def sweep(self, grace: timedelta, now: datetime | None = None) -> int:
        """Delete files older than ``grace`` that no row references, and stale temp files.

        The grace period spares files written moments ago whose row is not committed yet.
        """
        cutoff = (now or datetime.now(UTC)) - grace
        old = [key for key, modified in await self._files.listing() if modified < cutoff]
        temporary = [key for key in old if is_temporary(key)]
        for key in temporary:
            await self._files.delete(key)
        candidates = [key for key in old if not is_temporary(key)]
        referenced: set[str] = set()
        for start in range(0, len(candidates), 1000):
            batch = candidates[start : start + 1000]
            rows = await self._pool.fetch(
                "SELECT DISTINCT storage_key FROM snapshots WHERE storage_key = ANY($1::text[])",
                batch,
            )
            referenced.update(row["storage_key"] for row in rows)
        deleted = await self.release([key for key in candidates if key not in referenced])
        if deleted or temporary:
            log.info("orphan sweep deleted %d files and %d temp files", deleted, len(temporary))
        return deleted + len(temporary)
