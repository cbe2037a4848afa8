"""A stream.probe command carrying several streams, with Postgres and ffprobe."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from lookout_shared.broker import PermanentFailure
from lookout_shared.contracts import ProbeStream
from lookout_shared.stream_urls import StreamUrl
from lookout_snapshot_worker.bootstrap import build_deps
from lookout_snapshot_worker.domain.streams import ProbeResult
from lookout_snapshot_worker.handlers.probe import probe_stream
from lookout_snapshot_worker.ports import Deps, Prober

from .test_handlers import add_rows, media_dir, settings_for

__all__ = ["media_dir"]  # the fixture


async def add_stream(db: asyncpg.Pool, tenant: uuid.UUID, url: str) -> uuid.UUID:
    stream = uuid.uuid4()
    await db.execute(
        "INSERT INTO streams (id, tenant_id, name, url, kind) VALUES ($1, $2, 'cam', $3, 'file')",
        stream, tenant, url,
    )  # fmt: skip
    return stream


async def states(db: asyncpg.Pool, streams: list[uuid.UUID]) -> list[tuple[str, int] | None]:
    rows = {
        r["id"]: (r["status"], r["version"])
        for r in await db.fetch(
            "SELECT id, status, version FROM streams WHERE id = ANY($1)", streams
        )
    }
    return [rows.get(s) for s in streams]


async def test_a_batch_probes_exactly_the_pending_streams_of_its_tenant(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    deps: Deps = build_deps(settings_for(media_dir, tmp_path / "snapshots"), db)
    url = (media_dir / "cam.mp4").as_uri()
    tenant, first, _ = await add_rows(db, url, with_job=False)
    probed = await add_stream(db, tenant, url)
    await db.execute("UPDATE streams SET status = 'online' WHERE id = $1", probed)
    deleted = await add_stream(db, tenant, url)
    await db.execute("DELETE FROM streams WHERE id = $1", deleted)
    _, foreign, _ = await add_rows(db, url, with_job=False)
    last = await add_stream(db, tenant, url)
    batch = [first, probed, deleted, foreign, last]

    # The stream of another tenant is refused (the command is dead-lettered), after the rest.
    with pytest.raises(PermanentFailure, match="does not own the stream"):
        await probe_stream(ProbeStream(stream_ids=batch), tenant, deps)

    assert await states(db, batch) == [
        ("online", 2), ("online", 1), None, ("pending", 1), ("online", 2),
    ]  # fmt: skip
    row = await db.fetchrow("SELECT width, codec FROM streams WHERE id = $1", last)
    assert row is not None and (row["width"], row["codec"]) == (640, "h264")


class FailingFor:
    """The real prober, except for one URL, whose probe breaks with an unforeseen error."""

    def __init__(self, real: Prober, url: str) -> None:
        self.real, self.url = real, url

    async def probe(self, url: StreamUrl) -> ProbeResult:
        if url.url == self.url:
            raise RuntimeError("the probe broke")
        return await self.real.probe(url)


async def test_an_unexpected_error_on_one_stream_leaves_the_others_probed_then_is_raised(
    db: asyncpg.Pool, media_dir: Path, tmp_path: Path
) -> None:
    deps: Deps = build_deps(settings_for(media_dir, tmp_path / "snapshots"), db)
    url = (media_dir / "cam.mp4").as_uri()
    copy = media_dir / f"copy-{uuid.uuid4().hex[:8]}.mp4"
    shutil.copyfile(media_dir / "cam.mp4", copy)
    broken = copy.as_uri()
    tenant, first, _ = await add_rows(db, url, with_job=False)
    failing = await add_stream(db, tenant, broken)
    last = await add_stream(db, tenant, url)
    batch = [first, failing, last]
    command = ProbeStream(stream_ids=batch)

    with pytest.raises(RuntimeError, match="the probe broke"):
        await probe_stream(command, tenant, replace(deps, prober=FailingFor(deps.prober, broken)))
    assert await states(db, batch) == [("online", 2), ("pending", 1), ("online", 2)]
    assert deps.probing == set()

    # Delivered again (the cause gone): only the stream still pending is probed.
    await probe_stream(command, tenant, deps)
    assert await states(db, batch) == [("online", 2), ("online", 2), ("online", 2)]
