"""Snapshot storage port and its local-directory adapter.

Keys are content-addressed (``ab/cd/<sha256>.jpg``): the same bytes stored twice land in one
file, so a redelivered capture never leaves a second copy. Writes go to a temporary file and
are renamed into place, so a reader never sees half a file. An S3-compatible adapter can
implement the same Protocol later.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size_bytes: int
    content_type: str


class SnapshotStorage(Protocol):
    async def put(self, data: bytes, content_type: str) -> StoredObject: ...

    def path_of(self, key: str) -> Path: ...


class LocalStorage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest[2:4]}/{digest}.{EXTENSIONS.get(content_type, 'bin')}"
        await asyncio.to_thread(self._write, key, data)
        return StoredObject(key, digest, len(data), content_type)

    def _write(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("storage key escapes the storage root")
        return path
