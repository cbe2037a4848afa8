"""API gateway rows: cached reads against ``LOOKOUT_CACHE=off``, keyset against offset
pagination, list totals from the aggregator's counts against SQL counting, and a snapshot
request's 202 against the capture it queues.

The data set is loaded with COPY: 1,000,000 streams over 1,000 tenants (``BENCH_SCALE=small``:
100,000 over 100). Fleets are skewed, so the largest tenant holds 60% of the streams, which
also gives the cursor row its depth of 500,000 (small: 50,000) inside one tenant. The counts
come from the aggregator's own ``rebuild`` command.

Throughput rows run `wrk` (Debian's package) with 64 connections against one api process
(uvicorn, one worker, as deployed per container) on this machine, first with the cache on,
then with ``LOOKOUT_CACHE=off``; each request picks a random stream (or tenant) from a working
set, so the cached run measures real hits, misses and per-tenant keys, not one hot entry.
Access tokens are minted with the api's own codec (a JWT needs no database row to verify).

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_api`` with the stack's variables
(``make bench ROWS=api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import asyncpg
import httpx
from lookout_api.adapters import counts_redis, stream_list_db
from lookout_api.bootstrap import token_codec
from lookout_api.domain.listing import (
    COUNT_CAP,
    Position,
    Sort,
    StreamFilter,
    StreamQuery,
    encode_cursor,
)
from lookout_api.settings import ApiSettings
from lookout_shared.redis import Keys, create_redis
from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.commands import capture_command
from lookout_snapshot_worker.adapters.process import run_bounded

from bench.bench_worker import make_video
from bench.report import Row, latencies, ms, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
STREAMS = 100_000 if SMALL else 1_000_000
TENANTS = 100 if SMALL else 1_000
BIG_SHARE = 0.6
DEPTH = 50_000 if SMALL else 500_000
CONNECTIONS = 64
DURATION_S = 5 if SMALL else 10
WORKING_SET = 2_000  # streams read by the single-stream row
SQL_READS = 10 if SMALL else 20
SNAPSHOT_STREAMS = 100
STATUSES = ["pending", "online", "error", "disabled"]
BIN = Path(sys.executable).parent  # the services' entrypoints, installed beside python
KINDS = ["rtsp", "rtmp", "hls", "http"]


@dataclass(frozen=True)
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float

    def figure(self) -> str:
        return f"{self.rps:,.0f} req/s (p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms)"


@dataclass(frozen=True)
class DataSet:
    tenants: list[uuid.UUID]
    big: uuid.UUID
    streams: list[tuple[uuid.UUID, uuid.UUID]]  # (tenant, stream) samples for single reads
    snap_tenant: uuid.UUID
    snap_streams: list[uuid.UUID]


# --- loading ------------------------------------------------------------------------------


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


# --- the api process and wrk --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api_process(env: dict[str, str], cache: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "lookout-api")],
        env=env | {"LOOKOUT_API_PORT": str(port), "LOOKOUT_CACHE": cache},
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the api did not become ready (exit {proc.returncode})")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk_script(folder: Path, requests: list[tuple[str, str, str]]) -> Path:
    """A wrk Lua script that sends a random one of ``requests`` (method, path, token)."""
    entries = ",\n".join(f'{{"{m}", "{p}", "Bearer {t}"}}' for m, p, t in requests)
    script = folder / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(
        f"""local reqs = {{
{entries}
}}
math.randomseed(7)
request = function()
  local r = reqs[math.random(#reqs)]
  return wrk.format(r[1], r[2], {{["Authorization"] = r[3]}})
end
"""
    )
    return script


def run_wrk(base: str, script: Path, seconds: int) -> Wrk:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Wrk(rps, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"))


def _wrk_ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"^\s+{pct}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def throughput(base: str, folder: Path, requests: list[tuple[str, str, str]]) -> Wrk:
    script = wrk_script(folder, requests)
    run_wrk(base, script, 2)  # warm: connections, caches, Postgres buffers
    return run_wrk(base, script, DURATION_S)


# --- in-process measurements --------------------------------------------------------------


def p50_ratio(baseline: list[float], measured: list[float]) -> float:
    return percentile(baseline, 50) / percentile(measured, 50)


async def pagination_rows(pool: asyncpg.Pool, big: uuid.UUID) -> list[Row]:
    """The page at ``DEPTH`` through the api's own list query: keyset against OFFSET (the
    api refuses offsets past 100,000 for this reason, so the baseline calls the query
    directly)."""
    sort = Sort("created_at", descending=True)
    at = await pool.fetchrow(
        """SELECT created_at, id FROM streams WHERE tenant_id = $1
           ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1""",
        big,
        DEPTH - 1,
    )
    assert at is not None, "the big tenant is smaller than the depth"
    keyset = StreamQuery(StreamFilter(big), sort, 50, after=Position(at["created_at"], at["id"]))
    offset = StreamQuery(StreamFilter(big), sort, 50, offset=DEPTH)
    async with pool.acquire() as conn:
        by_cursor = await latencies(lambda: stream_list_db.list_page(conn, keyset, None), SQL_READS)
        by_offset = await latencies(lambda: stream_list_db.list_page(conn, offset, None), SQL_READS)
        first_keyset, _ = await stream_list_db.list_page(conn, keyset, None)
        first_offset, _ = await stream_list_db.list_page(conn, offset, None)
    assert [r["id"] for r in first_keyset] == [r["id"] for r in first_offset]
    assert encode_cursor(sort, at["created_at"], at["id"])  # the cursor a client would send
    return [
        Row(
            f"list page at depth {DEPTH:,} (cursor)",
            ms(by_cursor),
            f"offset={DEPTH}",
            ms(by_offset),
            p50_ratio(by_offset, by_cursor),
        )
    ]


async def total_rows(
    pool: asyncpg.Pool, settings: ApiSettings, big: uuid.UUID, size: int
) -> list[Row]:
    redis = create_redis(settings.redis_url.get_secret_value())
    keys = Keys(settings.redis_prefix)
    try:
        from_counts = await latencies(
            lambda: counts_redis.read_fields(redis, keys, big, "streams_total"), 200
        )
        read = await counts_redis.read_fields(redis, keys, big, "streams_total")
        assert read is not None, "the counts are not trusted: was the rebuild run?"
        (total,) = read[1]
        assert total == size, (total, size)
    finally:
        await redis.aclose()
    count_star = await latencies(
        lambda: pool.fetchval("SELECT count(*) FROM streams WHERE tenant_id = $1", big), SQL_READS
    )
    window = await latencies(
        lambda: pool.fetch(
            """SELECT id, name, count(*) OVER () AS total FROM streams WHERE tenant_id = $1
               ORDER BY created_at DESC, id DESC LIMIT 50""",
            big,
        ),
        SQL_READS,
    )
    what = f"list total, {size:,} streams (aggregator counts)"
    return [
        Row(what, ms(from_counts), "count(*)", ms(count_star), p50_ratio(count_star, from_counts)),
        Row(what, ms(from_counts), "count(*) OVER ()", ms(window), p50_ratio(window, from_counts)),
    ]


async def snapshot_row(base: str, token: str, data: DataSet, video: Path, media: Path) -> Row:
    """POST .../snapshots answers 202 once the job and its command are committed; the
    capture it queues runs elsewhere. One request per stream, so none joins another's job."""
    headers = {"Authorization": f"Bearer {token}"}
    accepted: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for stream in data.snap_streams:
            started = time.perf_counter()
            r = await client.post(f"/api/v1/streams/{stream}/snapshots")
            accepted.append(time.perf_counter() - started)
            assert r.status_code == 202, r.text
    argv = capture_command(
        "ffmpeg",
        parse_stream_url(video.as_uri(), str(media)),
        max_width=1920,
        io_timeout=20,
        max_pixels=7680 * 4320,
    )
    captures: list[float] = []
    for _ in range(10):
        started = time.perf_counter()
        done = await run_bounded(argv, 60)
        assert done.returncode == 0, done.stderr[-500:]
        captures.append(time.perf_counter() - started)
    return Row(
        "snapshot request answered (202)",
        ms(accepted),
        "the ffmpeg capture it queues (720p H.264 file)",
        ms(captures),
        p50_ratio(captures, accepted),
    )


# --- the run ------------------------------------------------------------------------------


async def main() -> None:
    rng = random.Random(4)
    settings = ApiSettings(redis_prefix=f"bench-api-{uuid.uuid4().hex[:8]}:")
    codec = token_codec(settings)
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-api-"))
    media = folder / "media"
    media.mkdir()
    video = make_video(media)
    env = os.environ | {
        "LOOKOUT_REDIS_PREFIX": settings.redis_prefix,
        "LOOKOUT_LOG_LEVEL": "WARNING",
        "LOOKOUT_MEDIA_DIR": str(media),
        "LOOKOUT_STORAGE_DIR": str(folder / "snapshots"),
        "LOOKOUT_DEFAULT_SNAPSHOT_REQUESTS_PER_MINUTE": "100000",
    }
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=4, command_timeout=1800
    )
    data: DataSet | None = None
    try:
        print(f"loading {STREAMS:,} streams over {TENANTS:,} tenants with COPY", flush=True)
        started = time.perf_counter()
        data = await load(pool, rng, video)
        print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"counts rebuilt in {rebuild_counts(env):.0f} s", flush=True)
        big_size = int(STREAMS * BIG_SHARE)

        def token(tenant: uuid.UUID, role: str = "viewer") -> str:
            return codec.issue(uuid.uuid4(), tenant, role, timedelta(hours=2))  # type: ignore[arg-type]

        tokens = {t: token(t) for t in data.tenants}
        single = [("GET", f"/api/v1/streams/{s}", tokens[t]) for t, s in data.streams]
        first_pages = [("GET", "/api/v1/streams?limit=50", tokens[t]) for t in data.tenants]

        # Each setting runs twice, alternating, and keeps its better run: a background
        # checkpoint or autovacuum after the load then cannot decide a ratio.
        runs: dict[str, dict[str, Wrk]] = {"on": {}, "off": {}}
        for cache in ("on", "off", "on", "off"):
            with api_process(env, cache) as base:
                print(f"wrk, cache {cache}", flush=True)
                for row, requests in (("single", single), ("list", first_pages)):
                    measured = throughput(base, folder, requests)
                    if row not in runs[cache] or measured.rps > runs[cache][row].rps:
                        runs[cache][row] = measured
        # A write checks its account in Postgres: the snapshot requests need a real operator.
        operator = await pool.fetchval(
            """INSERT INTO users (id, tenant_id, email, password_hash, role)
               VALUES ($1, $2, $3, 'unused', 'operator') RETURNING id""",
            uuid.uuid4(),
            data.snap_tenant,
            f"bench-{uuid.uuid4().hex[:8]}@example.com",
        )
        operator_token = codec.issue(operator, data.snap_tenant, "operator", timedelta(hours=2))
        with api_process(env, "off") as base:
            snap = await snapshot_row(base, operator_token, data, video, media)
        rows = [
            Row(
                f"GET /api/v1/streams/{{id}}, {CONNECTIONS} connections, cache on",
                runs["on"]["single"].figure(),
                "LOOKOUT_CACHE=off",
                runs["off"]["single"].figure(),
                runs["on"]["single"].rps / runs["off"]["single"].rps,
            ),
            Row(
                f"first list page with total, {CONNECTIONS} connections, cache on",
                runs["on"]["list"].figure(),
                "LOOKOUT_CACHE=off",
                runs["off"]["list"].figure(),
                runs["on"]["list"].rps / runs["off"]["list"].rps,
            ),
            *await pagination_rows(pool, data.big),
            *await total_rows(pool, settings, data.big, big_size),
            snap,
        ]
        scale = "BENCH_SCALE=small" if SMALL else "full scale"
        publish(
            "api",
            "API gateway: cached reads, pagination, totals, snapshot requests",
            rows,
            notes=f"""{scale}: {STREAMS:,} streams over {TENANTS:,} tenants (COPY; the largest
tenant holds {big_size:,}), counts from `lookout-count-aggregator rebuild`. Throughput rows:
`wrk -t1 -c{CONNECTIONS} -d{DURATION_S}s` (best of two runs per setting, alternating) against one api process (one uvicorn worker) on the
same 2 cores as Postgres, Redis and wrk itself, viewer tokens; single reads pick one of
{len(single):,} streams of every tenant at random, list reads the first page (50 streams and
the total) of one of {TENANTS:,} tenants at random. Ratios: throughput rows are cache on /
off; latency rows are baseline p50 / measured p50. The offset baseline calls the api's list
query directly: the api itself refuses offsets past {100_000:,}. COUNT_CAP for SQL totals is
{COUNT_CAP:,}.""",
        )
    finally:
        print("cleaning up", flush=True)
        if data is not None:
            await pool.execute(
                "DELETE FROM tenants WHERE id = ANY($1::uuid[])", [*data.tenants, data.snap_tenant]
            )
        redis = create_redis(settings.redis_url.get_secret_value())
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=5000):
            batch.append(key)
            if len(batch) == 5000:
                await redis.unlink(*batch)
                batch.clear()
        if batch:
            await redis.unlink(*batch)
        await redis.aclose()
        await pool.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
