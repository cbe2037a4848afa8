"""Captures from real sources served on loopback (allow-listed explicitly): HLS, MJPEG, an
endless stream, a 404, a tarpit, a hostile playlist, a redirect, and a loopback URL that is
not allow-listed."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import CaptureSnapshot
from lookout_snapshot_worker.bootstrap import build_deps
from lookout_snapshot_worker.handlers.capture import capture_snapshot
from lookout_snapshot_worker.ports import Deps
from lookout_snapshot_worker.settings import WorkerSettings

from .conftest import SECRET, Sources
from .test_http_service import add_job


def deps_for(db: asyncpg.Pool, tmp_path: Path, **overrides: object) -> Deps:
    values: dict[str, object] = {
        "storage_dir": str(tmp_path / "store"), "capture_attempts": 1,
        "capture_backoff_seconds": 0, "ffmpeg_timeout_seconds": 5,
        "allowed_networks": "127.0.0.1/32", **overrides,
    }  # fmt: skip
    return build_deps(WorkerSettings(**values), db)  # type: ignore[arg-type]


async def run_capture(db: asyncpg.Pool, deps: Deps, url: str, kind: str = "http") -> uuid.UUID:
    tenant, stream, job = await add_job(db, url, kind)
    await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    return job


async def job_row(db: asyncpg.Pool, job: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(
        """SELECT j.status, j.error, s.width, s.height FROM snapshot_jobs j
           LEFT JOIN snapshots s ON s.job_id = j.id WHERE j.id = $1""",
        job,
    )
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/hls/index.m3u8", "hls"), ("/mjpeg", "http"), ("/endless.ts", "http"),
     ("/cam.ts", "http")],
)  # fmt: skip
async def test_captures_from_real_http_sources(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources, path: str, kind: str
) -> None:
    job = await run_capture(db, deps_for(db, tmp_path), sources.base + path, kind)
    row = await job_row(db, job)
    assert (row["status"], row["width"], row["height"]) == ("succeeded", 320, 240)


async def test_a_404_fails_at_once(db: asyncpg.Pool, tmp_path: Path, sources: Sources) -> None:
    deps = deps_for(db, tmp_path, capture_attempts=3)
    with pytest.raises(PermanentFailure, match="404"):
        await run_capture(db, deps, sources.base + "/nothing-here.ts")
    assert sum(p == "/nothing-here.ts" for p in sources.requests) == 1  # not retried


async def test_a_tarpit_fails_by_its_timeout(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    deps = deps_for(db, tmp_path, ffmpeg_timeout_seconds=1)
    with pytest.raises(PermanentFailure, match=r"timed out|[Tt]imeout"):
        await run_capture(db, deps, f"http://{sources.tarpit}/live.ts")


async def test_a_hostile_playlist_leaks_nothing(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    deps = deps_for(db, tmp_path)
    with pytest.raises(PermanentFailure) as failure:
        await run_capture(db, deps, sources.base + "/hostile.m3u8", "hls")
    row = await job_row(db, job=await db.fetchval("SELECT id FROM snapshot_jobs"))
    assert row["status"] == "failed"
    assert SECRET.decode() not in str(failure.value) and SECRET.decode() not in row["error"]
    assert not any((tmp_path / "store").rglob("*.jpg"))


async def test_redirects_are_not_followed_by_ffmpeg(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    # ffmpeg runs with -max_redirects 0: a redirect (here to an allowed place, it could as
    # well be the metadata service) fails instead of being followed unchecked.
    deps = deps_for(db, tmp_path)
    with pytest.raises(PermanentFailure):
        await run_capture(db, deps, sources.base + "/redirect?to=/cam.ts%3Fvia=redirect")
    assert "/redirect?to=/cam.ts%3Fvia=redirect" in sources.requests
    assert "/cam.ts?via=redirect" not in sources.requests


async def test_loopback_not_allow_listed_is_refused_before_ffmpeg(
    db: asyncpg.Pool, tmp_path: Path, sources: Sources
) -> None:
    deps = deps_for(db, tmp_path, allowed_networks="")
    before = len(sources.requests)
    with pytest.raises(PermanentFailure, match="loopback"):
        await run_capture(db, deps, sources.base + "/cam.ts?probe=guard")
    assert len(sources.requests) == before  # nothing reached the server
