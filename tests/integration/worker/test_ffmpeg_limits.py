"""Resource caps of every capture and ffprobe run, with real FFmpeg on local files: frames
over the pixel cap are refused by the decoders themselves (png, mjpeg, h264), and the memory
cap stops a run that would map more, each as a clear permanent failure that is not retried."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
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

from .test_http_service import add_job

MIB = 1024 * 1024


def grey_png(path: Path, width: int, height: int) -> None:
    """A single-colour greyscale PNG of any size, compressed row by row: a huge frame that
    takes a few hundred KB to write (decoded, it is width x height bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x80" * width  # filter "none", then mid grey
    packer = zlib.compressobj(6)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    media = tmp_path_factory.mktemp("media")
    grey_png(media / "huge.png", 16000, 16000)
    src = ["-f", "lavfi", "-i", "color=c=gray:size=2048x2048"]
    for name, codec in (
        ("big.png", ["-frames:v", "1"]),
        ("big.jpg", ["-frames:v", "1", "-q:v", "5"]),
        ("big.mp4", ["-t", "0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    ):
        subprocess.run(["ffmpeg", "-loglevel", "error", *src, *codec, str(media / name)],
                       check=True)  # fmt: skip
    return media


def peak_memory(deps: Deps) -> int:
    """The peak resident memory (VmHWM) of the one capture child that ``deps`` ran."""
    media = deps.frames
    assert isinstance(media, FfmpegMedia)
    [pid] = media.children.pids()
    status = Path(f"/proc/{pid}/status").read_text()
    [kib] = re.findall(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    return int(kib) * 1024


def deps_for(db: asyncpg.Pool, media: Path, tmp_path: Path, **overrides: object) -> Deps:
    values: dict[str, object] = {
        "media_dir": str(media), "storage_dir": str(tmp_path / "store"),
        "capture_attempts": 3, "capture_backoff_seconds": 0, "ffmpeg_timeout_seconds": 30,
        **overrides,
    }  # fmt: skip
    return build_deps(WorkerSettings(**values), db)  # type: ignore[arg-type]


async def capture(db: asyncpg.Pool, deps: Deps, file: Path) -> asyncpg.Record:
    tenant, stream, job = await add_job(db, file.as_uri())
    with pytest.raises(PermanentFailure):
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
    row = await db.fetchrow("SELECT status, attempts, error FROM snapshot_jobs WHERE id = $1", job)
    assert row is not None
    return row


async def test_a_16000x16000_frame_is_refused_without_taking_memory(
    db: asyncpg.Pool, media: Path, tmp_path: Path
) -> None:
    deps = deps_for(db, media, tmp_path)  # default caps
    row = await capture(db, deps, media / "huge.png")
    # Failed for good on the first attempt (3 allowed), and the reason says which limit.
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["error"] == (
        "the source's frames are larger than 33177600 pixels (LOOKOUT_FFMPEG_MAX_PIXELS)"
    )
    peak = peak_memory(deps)  # the child lives on for the next capture
    assert peak < 128 * MIB, f"the capture child peaked at {peak / MIB:.0f} MiB"


async def test_a_frame_that_needs_more_than_the_memory_cap_fails_within_it(
    db: asyncpg.Pool, media: Path, tmp_path: Path
) -> None:
    # No pixel cap to speak of: the memory cap alone stops the 256 MB frame.
    deps = deps_for(db, media, tmp_path, ffmpeg_max_pixels=16000 * 16000, ffmpeg_max_memory_mb=128)
    row = await capture(db, deps, media / "huge.png")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert (
        row["error"] == "ffmpeg ran out of its 128 MiB memory limit (LOOKOUT_FFMPEG_MAX_MEMORY_MB)"
    )
    peak = peak_memory(deps)
    assert peak < 128 * MIB, f"the capture child peaked at {peak / MIB:.0f} MiB"


@pytest.mark.parametrize("name", ["big.png", "big.jpg", "big.mp4"])
async def test_each_decoder_refuses_frames_over_the_pixel_cap(
    db: asyncpg.Pool, media: Path, tmp_path: Path, name: str
) -> None:
    """png, mjpeg and h264 decoders all honour -max_pixels, in ffmpeg and in ffprobe."""
    deps = deps_for(db, media, tmp_path, ffmpeg_max_pixels=1_000_000)  # 2048x2048 is 4.2M
    reason = "the source's frames are larger than 1000000 pixels (LOOKOUT_FFMPEG_MAX_PIXELS)"
    row = await capture(db, deps, media / name)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, reason)

    tenant, stream, _ = await add_job(db, (media / name).as_uri())
    await probe_stream(ProbeStream(stream_ids=[stream]), tenant, deps)
    probed = await db.fetchrow(
        "SELECT status, last_error, width FROM streams WHERE id = $1", stream
    )
    assert probed is not None
    assert (probed["status"], probed["last_error"], probed["width"]) == ("error", reason, None)


async def test_frames_within_the_caps_are_captured(
    db: asyncpg.Pool, media: Path, tmp_path: Path
) -> None:
    deps = deps_for(db, media, tmp_path)
    for name in ("big.png", "big.jpg", "big.mp4"):
        tenant, stream, job = await add_job(db, (media / name).as_uri())
        await capture_snapshot(CaptureSnapshot(job_id=job, stream_id=stream), tenant, deps)
        row = await db.fetchrow("SELECT width FROM snapshots WHERE job_id = $1", job)
        assert row is not None and row["width"] == 1920, name
