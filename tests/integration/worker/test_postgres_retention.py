"""Retention, file clean-up and the orphan sweep against real Postgres and real files;
the circuit breaker's state in Postgres."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_snapshot_worker.adapters.files import LocalFiles
from lookout_snapshot_worker.adapters.reaper import PostgresReaper
from lookout_snapshot_worker.bootstrap import build_deps
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.settings import WorkerSettings


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    media = tmp_path_factory.mktemp("media")
    for name, source in (("a.mp4", "testsrc"), ("b.mp4", "smptebars"), ("c.mp4", "rgbtestsrc")):
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"{source}=size=320x240:rate=5",
             "-t", "1", "-pix_fmt", "yuv420p", str(media / name)],
            check=True,
        )  # fmt: skip
    return media


def settings_for(media_dir: Path, storage: Path, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {
        "media_dir": str(media_dir), "storage_dir": str(storage), "capture_attempts": 1,
        "capture_backoff_seconds": 0, "ffmpeg_timeout_seconds": 10, **overrides,
    }  # fmt: skip
    return WorkerSettings(**values)  # type: ignore[arg-type]


async def add_stream(db: asyncpg.Pool, url: str) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, stream = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"t-{tenant}")
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, 'file')",
        stream, tenant, url,
    )  # fmt: skip
    return tenant, stream


async def capture(
    db: asyncpg.Pool, deps: object, tenant: uuid.UUID, stream: uuid.UUID, url: str | None = None
) -> uuid.UUID:
    if url is not None:
        await db.execute("UPDATE streams SET url = $2 WHERE id = $1", stream, url)
    job = uuid.uuid4()
    await db.execute(
        "INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES ($1, $2, $3)",
        job, tenant, stream,
    )  # fmt: skip
    await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)  # type: ignore[arg-type]
    return job


def files_in(storage: Path) -> set[str]:
    return {p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file()}


async def test_retention_keeps_the_newest_n_and_deletes_only_unshared_files(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "store"
    deps = build_deps(settings_for(media_dir, storage, snapshots_per_stream=2), db)
    a, b, c = ((media_dir / n).as_uri() for n in ("a.mp4", "b.mp4", "c.mp4"))
    tenant, stream = await add_stream(db, a)
    _, neighbour = await add_stream(db, a)  # another stream, same picture: shares a file

    await capture(db, deps, tenant, neighbour)
    first = await capture(db, deps, tenant, stream)
    second = await capture(db, deps, tenant, stream, b)
    assert len(files_in(storage)) == 2  # a (shared by two rows) and b
    third = await capture(db, deps, tenant, stream, c)

    rows = await db.fetch(
        "SELECT job_id, storage_key FROM snapshots WHERE stream_id = $1 ORDER BY created_at",
        stream,
    )
    assert [r["job_id"] for r in rows] == [second, third]
    # The pruned row's file is still referenced by the neighbour's snapshot: it stays.
    keys = {r["storage_key"] for r in await db.fetch("SELECT storage_key FROM snapshots")}
    assert files_in(storage) == keys and len(keys) == 3

    deleted = await db.fetch(
        "SELECT body FROM outbox WHERE message_type = 'snapshot.deleted' ORDER BY id"
    )
    first_snapshot = await db.fetchval("SELECT snapshot_id FROM snapshot_jobs WHERE id = $1", first)
    assert [uuid.UUID(d["body"]["entity_id"]) for d in deleted] == [first_snapshot]
    assert deleted[0]["body"]["data"] == {"stream_id": str(stream)}

    # The next one prunes b, whose file nothing else references: the file goes too.
    await capture(db, deps, tenant, stream, a)
    keys = {r["storage_key"] for r in await db.fetch("SELECT storage_key FROM snapshots")}
    assert files_in(storage) == keys and len(keys) == 2
    assert await db.fetchval("SELECT count(*) FROM snapshots WHERE stream_id = $1", stream) == 2


async def test_the_orphan_sweep_removes_old_files_without_rows_only(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "store"
    deps = build_deps(settings_for(media_dir, storage), db)
    tenant, stream = await add_stream(db, (media_dir / "a.mp4").as_uri())
    await capture(db, deps, tenant, stream)
    [kept] = files_in(storage)
    files = LocalFiles(storage)
    orphan = (await files.put(b"\xff\xd8 no row", "image/jpeg")).key
    young = (await files.put(b"\xff\xd8 written a moment ago", "image/jpeg")).key
    temp = storage / "ab" / ".tmp-dead"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half")
    old = time.time() - 3600
    for path in (storage / kept, storage / orphan, temp):
        os.utime(path, (old, old))

    removed = await PostgresReaper(db, files).sweep(timedelta(minutes=10))
    assert removed == 2
    assert files_in(storage) == {kept, young}


async def test_the_breaker_opens_in_postgres_and_a_probe_success_closes_it(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "store"
    deps = build_deps(settings_for(media_dir, storage, breaker_threshold=2), db)
    tenant, stream = await add_stream(db, (media_dir / "missing.mp4").as_uri())
    for _ in range(2):
        with pytest.raises(PermanentFailure, match="No such file"):
            await capture(db, deps, tenant, stream)
    row = await db.fetchrow("SELECT * FROM stream_breakers WHERE stream_id = $1", stream)
    assert row is not None and (row["failures"], row["trips"]) == (2, 1)
    marked = await db.fetchrow("SELECT status, last_error FROM streams WHERE id = $1", stream)
    assert marked is not None and marked["status"] == "error"
    assert "circuit open" in marked["last_error"]
    with pytest.raises(PermanentFailure, match="circuit open"):
        await capture(db, deps, tenant, stream)
    failed = await db.fetchrow(
        "SELECT attempts, error FROM snapshot_jobs WHERE stream_id = $1 ORDER BY created_at DESC"
        " LIMIT 1",
        stream,
    )
    assert failed is not None
    assert failed["attempts"] == 0 and "circuit open" in failed["error"]

    # The delay passes (moved back in time here); the real probe succeeds and closes it.
    await db.execute(
        "UPDATE stream_breakers SET open_until = now() - interval '1 second' WHERE stream_id = $1",
        stream,
    )
    # A new URL, as the api writes it: pending, with a probe to follow.
    await db.execute("UPDATE streams SET url = $2, status = 'pending' WHERE id = $1", stream,
                     (media_dir / "a.mp4").as_uri())  # fmt: skip
    await probe_stream(ProbeStream(stream_ids=[stream]), tenant, deps)
    assert (
        await db.fetchval("SELECT count(*) FROM stream_breakers WHERE stream_id = $1", stream) == 0
    )
    row = await db.fetchrow("SELECT status, fps, width FROM streams WHERE id = $1", stream)
    assert row is not None
    assert (row["status"], row["fps"], row["width"]) == ("online", 5.0, 320)
