"""The api bench's data set: 1,000,000 streams over 1,000 tenants loaded with COPY
(``BENCH_SCALE=small``: 100,000 over 100). Fleets are skewed, so the largest tenant holds 60%
of the streams, which also gives the cursor row its depth of 500,000 (small: 50,000) inside
one tenant. The counts come from the aggregator's own ``rebuild`` command."""

from __future__ import annotations

import os
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import asyncpg
from lookout_shared import streams

from bench.api_servers import BIN

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
STREAMS = 100_000 if SMALL else 1_000_000
TENANTS = 100 if SMALL else 1_000
BIG_SHARE = 0.6
DEPTH = 50_000 if SMALL else 500_000
WORKING_SET = 2_000  # streams read by the single-stream row
SNAPSHOT_STREAMS = 641  # ten requests per client, and one to warm up
STATUSES = streams.STATUSES
KINDS = ["rtsp", "rtmp", "hls", "http"]


@dataclass(frozen=True)
class DataSet:
    tenants: list[uuid.UUID]
    big: uuid.UUID
    streams: list[tuple[uuid.UUID, uuid.UUID]]  # (tenant, stream) samples for single reads
    snap_tenant: uuid.UUID
    snap_streams: list[uuid.UUID]


def tenant_sizes(rng: random.Random) -> list[int]:
    """The big tenant first, the rest spread evenly (±50%) over the others."""
    big = int(STREAMS * BIG_SHARE)
    rest = STREAMS - big
    weights = [rng.uniform(0.5, 1.5) for _ in range(TENANTS - 1)]
    scale = rest / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += rest - sum(sizes)
    return [big, *sizes]


def stream_rows(
    tenant: uuid.UUID, n: int, rng: random.Random, now: datetime
) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        height = rng.choice([None, 480, 720, 1080, 2160])
        created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        yield (
            uuid.uuid4(),
            tenant,
            f"cam-{i:07d}",
            f"rtsp://viewer:secret@127.0.0.1:8554/cam-{i}",  # never contacted: no worker runs
            rng.choice(KINDS),
            rng.sample(["door", "yard", "roof", "gate"], rng.randint(0, 2)),
            rng.choice(STATUSES),
            height and height * 16 // 9,
            height,
            "h264" if height else None,
            created,
            created,
        )


STREAM_COLUMNS = [
    "id",
    "tenant_id",
    "name",
    "url",
    "kind",
    "tags",
    "status",
    "width",
    "height",
    "codec",
    "created_at",
    "updated_at",
]


async def load(pool: asyncpg.Pool, rng: random.Random, video: Path) -> DataSet:
    now = datetime.now(UTC)
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    snap_tenant = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "tenants",
            records=[(t, f"bench-{t}") for t in [*tenants, snap_tenant]],
            columns=["id", "name"],
        )
        samples: list[tuple[uuid.UUID, uuid.UUID]] = []
        for tenant, size in zip(tenants, tenant_sizes(rng), strict=True):
            rows = stream_rows(tenant, size, rng, now)
            while batch := [r for _, r in zip(range(100_000), rows, strict=False)]:
                await conn.copy_records_to_table("streams", records=batch, columns=STREAM_COLUMNS)
                picked = rng.sample(batch, min(3, len(batch)))
                samples.extend((tenant, cast(uuid.UUID, r[0])) for r in picked)
        snap_streams = [uuid.uuid4() for _ in range(SNAPSHOT_STREAMS)]
        await conn.copy_records_to_table(
            "streams",
            records=[
                (s, snap_tenant, f"file-{i}", video.as_uri(), "file", [], "online")
                for i, s in enumerate(snap_streams)
            ],
            columns=["id", "tenant_id", "name", "url", "kind", "tags", "status"],
        )
        await conn.execute("VACUUM ANALYZE streams")
        await conn.execute("CHECKPOINT")  # write the load out now, not during a measurement
    return DataSet(
        tenants,
        tenants[0],
        rng.sample(samples, min(WORKING_SET, len(samples))),
        snap_tenant,
        snap_streams,
    )


def rebuild_counts(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "lookout-count-aggregator"), "rebuild", "--quiet"], env=env, check=True
    )
    return time.perf_counter() - started
