"""The count aggregator bench's data: stream.created events and stream rows, with random
kinds, statuses, tags and heights."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import asyncpg
from lookout_shared import contracts, streams
from lookout_shared.envelope import Envelope, make_envelope

STATUSES = streams.STATUSES
KINDS = ["rtsp", "rtmp", "hls", "http", "file"]


def created(tenant: uuid.UUID, rng: random.Random) -> Envelope:
    state = contracts.StreamState(
        name="cam",
        kind=rng.choice(KINDS),
        status=rng.choice(STATUSES),
        enabled=True,
        tags=rng.sample(["door", "yard", "roof"], rng.randint(0, 2)),
        height=rng.choice([None, 480, 720, 1080, 2160]),
    )
    return make_envelope(
        "stream.created",
        state,
        producer="bench",
        tenant_id=tenant,
        entity_id=uuid.uuid4(),
        entity_version=1,
    )


def stream_rows(tenant: uuid.UUID, n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        yield (
            uuid.uuid4(),
            tenant,
            f"cam-{i}",
            "rtsp://127.0.0.1/x",
            rng.choice(KINDS),
            rng.sample(["door", "yard", "roof"], rng.randint(0, 2)),
            rng.choice(STATUSES),
            rng.choice([None, 480, 720, 1080, 2160]),
        )


async def load_streams(pool: asyncpg.Pool, tenant: uuid.UUID, n: int, rng: random.Random) -> None:
    """``n`` stream rows of ``tenant`` with COPY, then VACUUM ANALYZE."""
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"bench-{tenant}")
    columns = ["id", "tenant_id", "name", "url", "kind", "tags", "status", "height"]
    rows = stream_rows(tenant, n, rng)
    async with pool.acquire() as conn:
        while batch := [r for _, r in zip(range(100_000), rows, strict=False)]:
            await conn.copy_records_to_table("streams", records=batch, columns=columns)
        await conn.execute("VACUUM ANALYZE streams")
