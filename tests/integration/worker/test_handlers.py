"""Capture and probe handlers with the real adapters: Postgres, ffmpeg, local storage."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot, ProbeStream
from lookout_snapshot_worker.adapters.ffmpeg import FfmpegMedia
from lookout_snapshot_worker.bootstrap import build_deps
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.ports import Deps
from lookout_snapshot_worker.settings import WorkerSettings


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    media = tmp_path_factory.mktemp("media")
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=5",
         "-t", "2", "-pix_fmt", "yuv420p", str(media / "cam.mp4")],
        check=True,
    )  # fmt: skip
    return media


def settings_for(media_dir: Path, storage: Path, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {
        "media_dir": str(media_dir),
        "storage_dir": str(storage),
        "capture_attempts": 1,
        "capture_backoff_seconds": 0,
        "ffmpeg_timeout_seconds": 10,
        **overrides,
    }
    return WorkerSettings(**values)  # type: ignore[arg-type]


async def add_rows(
    db: asyncpg.Pool, url: str, *, with_job: bool = True
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    tenant, stream, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"t-{tenant}")
    await db.execute(
        """INSERT INTO streams (id, tenant_id, name, url, kind, tags)
           VALUES ($1, $2, 'cam', $3, 'file', '{lobby}')""",
        stream, tenant, url,
    )  # fmt: skip
    if with_job:
        await db.execute(
            "INSERT INTO snapshot_jobs (id, tenant_id, stream_id) VALUES ($1, $2, $3)",
            job, tenant, stream,
        )  # fmt: skip
    return tenant, stream, job


async def one(db: asyncpg.Pool, sql: str, *args: object) -> asyncpg.Record:
    row = await db.fetchrow(sql, *args)
    assert row is not None
    return row


def stored_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file()]


async def outbox_types(db: asyncpg.Pool, entity_ids: set[uuid.UUID]) -> list[str]:
    rows = await db.fetch("SELECT message_type, body FROM outbox ORDER BY id")
    return [r["message_type"] for r in rows if uuid.UUID(r["body"]["entity_id"]) in entity_ids]


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


async def test_capture_stores_one_snapshot_even_when_redelivered(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    deps = build_deps(settings_for(media_dir, storage), db)
    tenant, stream, job = await add_rows(db, (media_dir / "cam.mp4").as_uri())
    command = CaptureSnapshot(job_id=job, stream_id=stream)

    await capture_snapshot(command, tenant, deps)
    await capture_snapshot(command, tenant, deps)  # the same command, delivered again

    snapshots = await db.fetch("SELECT * FROM snapshots WHERE job_id = $1", job)
    assert len(snapshots) == 1
    snap = snapshots[0]
    assert (snap["tenant_id"], snap["stream_id"], snap["content_type"]) == (
        tenant, stream, "image/jpeg",
    )  # fmt: skip
    assert (snap["width"], snap["height"]) == (640, 360)
    [file] = stored_files(storage)
    data = file.read_bytes()
    assert data[:2] == b"\xff\xd8"
    assert file == deps.storage.path_of(snap["storage_key"])
    assert snap["size_bytes"] == len(data)

    row = await one(db, "SELECT * FROM snapshot_jobs WHERE id = $1", job)
    assert (row["status"], row["version"], row["attempts"], row["snapshot_id"]) == (
        "succeeded", 3, 1, snap["id"],
    )  # fmt: skip
    assert row["started_at"] is not None and row["finished_at"] is not None
    assert await outbox_types(db, {job, snap["id"]}) == [
        "snapshot_job.started", "snapshot.created", "snapshot_job.succeeded",
    ]  # fmt: skip


async def test_large_frames_are_scaled_down(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    deps = build_deps(settings_for(media_dir, storage, snapshot_max_width=320), db)
    tenant, stream, job = await add_rows(db, (media_dir / "cam.mp4").as_uri())
    await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    row = await one(db, "SELECT width, height FROM snapshots WHERE job_id = $1", job)
    assert (row["width"], row["height"]) == (320, 180)


@pytest.mark.parametrize(
    ("where", "reason"),
    [("outside", "inside the media directory"), ("missing", "No such file")],
)
async def test_bad_file_urls_fail_the_job(
    db: asyncpg.Pool, media_dir: Path, storage: Path, where: str, reason: str
) -> None:
    deps = build_deps(settings_for(media_dir, storage), db)
    if where == "outside":  # a real video, but beside the media directory
        target = media_dir.parent / "outside.mp4"
        target.write_bytes((media_dir / "cam.mp4").read_bytes())
    else:
        target = media_dir / "missing.mp4"
    url = target.as_uri()
    tenant, stream, job = await add_rows(db, url)

    with pytest.raises(PermanentFailure, match=reason):
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)

    row = await one(db, "SELECT status, error, version FROM snapshot_jobs WHERE id = $1", job)
    assert row["status"] == "failed" and reason in row["error"] and row["version"] == 3
    assert await outbox_types(db, {job}) == ["snapshot_job.started", "snapshot_job.failed"]
    assert await db.fetchval("SELECT count(*) FROM snapshots") == 0
    assert stored_files(storage) == []


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def process_group(pid: int) -> int | None:
    """The process group of a live (non-zombie) process, read from /proc; None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[2])


async def test_a_silent_input_kills_its_capture_child_at_the_timeout_and_a_fresh_one_follows(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    fifo = media_dir / f"silent-{uuid.uuid4().hex[:6]}.fifo"
    os.mkfifo(fifo)  # nobody ever writes: the capture blocks opening it
    deps = build_deps(settings_for(media_dir, storage, ffmpeg_timeout_seconds=1), db)
    media = deps.frames
    assert isinstance(media, FfmpegMedia)
    tenant, stream, job = await add_rows(db, fifo.as_uri())

    task = asyncio.create_task(
        capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    )
    seen: list[tuple[int, int | None]] = []
    while not task.done() and not seen:
        seen = [(pid, process_group(pid)) for pid in media.children.pids()]
        await asyncio.sleep(0.02)
    with pytest.raises(PermanentFailure, match="timed out after 1s"):
        await task

    assert seen, "no capture child started"
    [(pid, pgid)] = seen
    assert pid == pgid  # the child leads a process group of its own, which was killed
    assert not process_exists(pid) and media.children.pids() == []
    row = await one(db, "SELECT status, error FROM snapshot_jobs WHERE id = $1", job)
    assert (row["status"], row["error"]) == ("failed", "timed out after 1s")

    # The next capture gets a fresh child, which stays for the one after.
    tenant, stream, job = await add_rows(db, (media_dir / "cam.mp4").as_uri())
    await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    [fresh] = media.children.pids()
    assert fresh != pid
    await asyncio.gather(*(stop() for stop in deps.stop))
    assert not process_exists(fresh)


async def test_probe_records_size_and_codec(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    deps: Deps = build_deps(settings_for(media_dir, storage), db)
    tenant, stream, _ = await add_rows(db, (media_dir / "cam.mp4").as_uri(), with_job=False)
    await probe_stream(ProbeStream(stream_ids=[stream]), tenant, deps)
    row = await one(db, "SELECT * FROM streams WHERE id = $1", stream)
    assert (row["width"], row["height"], row["codec"], row["status"], row["version"]) == (
        640, 360, "h264", "online", 2,
    )  # fmt: skip
    event = await db.fetchval(
        "SELECT body FROM outbox WHERE message_type = 'stream.updated' ORDER BY id DESC LIMIT 1"
    )
    assert event["entity_version"] == 2
    assert event["data"]["tags"] == ["lobby"] and event["data"]["status"] == "online"


async def test_probe_of_a_broken_file_marks_the_stream_in_error(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    junk = media_dir / "junk.mp4"
    junk.write_bytes(b"this is not a video")
    deps = build_deps(settings_for(media_dir, storage), db)
    tenant, stream, _ = await add_rows(db, junk.as_uri(), with_job=False)
    await probe_stream(ProbeStream(stream_ids=[stream]), tenant, deps)
    row = await one(db, "SELECT status, last_error, version FROM streams WHERE id = $1", stream)
    assert row["status"] == "error" and row["version"] == 2
    assert "Invalid data" in row["last_error"] or "moov atom" in row["last_error"]


async def test_capture_children_are_bounded_by_worker_concurrency(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    fifos = [media_dir / f"bound-{tag}-{i}.fifo" for i in range(3)]
    for fifo in fifos:
        os.mkfifo(fifo)
    settings = settings_for(media_dir, storage, ffmpeg_timeout_seconds=0.5, worker_concurrency=1)
    deps = build_deps(settings, db)
    media = deps.frames
    assert isinstance(media, FfmpegMedia)
    commands = []
    for fifo in fifos:
        tenant, stream, job = await add_rows(db, fifo.as_uri())
        commands.append(
            capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
        )
    run = asyncio.gather(*commands, return_exceptions=True)
    most, seen = 0, set[int]()
    while not run.done():
        alive = [pid for pid in media.children.pids() if process_group(pid) is not None]
        most, seen = max(most, len(alive)), seen | set(alive)
        await asyncio.sleep(0.02)
    outcomes = await run
    assert all(isinstance(o, PermanentFailure) for o in outcomes)
    assert most == 1  # one at a time, though three captures were waiting
    assert len(seen) == 3  # each timed out, its child killed, and the next got a fresh one
    assert not any(process_exists(pid) for pid in seen)


def closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the with block ends


async def test_loopback_is_refused_unless_allowed_and_refusals_are_retried(
    db: asyncpg.Pool, media_dir: Path, storage: Path
) -> None:
    url = f"rtsp://127.0.0.1:{closed_loopback_port()}/live"

    # By default the guard refuses loopback before ffmpeg runs: permanent, no retry.
    guarded = build_deps(settings_for(media_dir, storage, capture_attempts=3), db)
    tenant, stream, job = await add_rows(db, url)
    with pytest.raises(PermanentFailure, match="loopback"):
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, guarded)
    assert (await one(db, "SELECT attempts FROM snapshot_jobs WHERE id = $1", job))[0] == 1

    # Allowed, ffmpeg connects and is refused: transient, so tried again up to the bound.
    allowed = build_deps(
        settings_for(media_dir, storage, capture_attempts=2, allowed_networks="127.0.0.0/8"), db
    )
    tenant, stream, job = await add_rows(db, url)
    with pytest.raises(PermanentFailure, match="Connection refused"):
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, allowed)
    row = await one(db, "SELECT status, attempts, error FROM snapshot_jobs WHERE id = $1", job)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "<input>: Connection refused" in row["error"]  # the URL itself is cut out
