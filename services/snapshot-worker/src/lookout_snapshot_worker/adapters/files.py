"""Local snapshot files, plus what retention and the orphan sweep need: exists, delete, list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from lookout_shared.storage import LocalStorage

TEMP_PREFIX = ".tmp-"  # LocalStorage's temporary files, renamed into place when complete


class LocalFiles(LocalStorage):
    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, missing_ok=True)

    async def listing(self) -> list[tuple[str, datetime]]:
        return await asyncio.to_thread(self._listing)

    def _listing(self) -> list[tuple[str, datetime]]:
        found = []
        for path in self.root.rglob("*"):
            try:
                if not path.is_file():
                    continue
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except OSError:
                continue  # deleted while we looked
            found.append((path.relative_to(self.root).as_posix(), modified))
        return found


def is_temporary(key: str) -> bool:
    return Path(key).name.startswith(TEMP_PREFIX)
