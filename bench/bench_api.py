"""API gateway rows: cached reads against ``LOOKOUT_CACHE=off``, keyset against offset
pagination, list totals from the aggregator's counts against SQL counting, and a snapshot
request's 202 against the capture it queues.

The data set is loaded with COPY: 1,000,000 streams over 1,000 tenants (``BENCH_SCALE=small``:
100,000 over 100). Fleets are skewed, so the largest tenant holds 60% of the streams, which
also gives the cursor row its depth of 500,000 (small: 50,000) inside one tenant. The counts
come from the aggregator's own ``rebuild`` command.

Throughput rows run `wrk` (Debian's package) with 64 connections against one process at a
time on this machine: the api as `make run` and the image run it (api_servers.py), with the
cache on and with ``LOOKOUT_CACHE=off``, and its peers (api_peers.py: bare Starlette, the
naive redis cache). Each request picks a random stream (or tenant) from a working set, so
the cached run measures per-tenant keys, not one hot entry. ``BENCH_ROUNDS=3`` repeats every
wrk row on the loaded data and reports each round and min/median/max; ``BENCH_PROFILE=0``
skips the py-spy flame graph of the cached read (bench/results/api-cached-read.svg).
Access tokens are minted with the api's own codec (a JWT needs no database row to verify).

Run: ``LOOKOUT_STACK=<stack> python -m bench.bench_api`` with the stack's variables
(``make bench ROWS=api``).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
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

from bench.api_peers import naive_key
from bench.api_servers import (
    BIN,
    CONNECTIONS,
    WARM_S,
    OtlpSink,
    Wrk,
    flame_graph,
    server,
    spread,
    throughput,
    wrk_script,
)
from bench.bench_worker import make_video
from bench.report import RESULTS, Row, latencies, ms, percentile, publish

SMALL = os.environ.get("BENCH_SCALE", "full") == "small"
STREAMS = 100_000 if SMALL else 1_000_000
TENANTS = 100 if SMALL else 1_000
BIG_SHARE = 0.6
DEPTH = 50_000 if SMALL else 500_000
DURATION_S = 5 if SMALL else 10
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "1")))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
FLAME_GRAPH = RESULTS / "api-cached-read.svg"
LIST_FLAME_GRAPH = RESULTS / "api-cached-list.svg"
WORKING_SET = 2_000  # streams read by the single-stream row
SQL_READS = 10 if SMALL else 20
SNAPSHOT_STREAMS = 641  # ten requests per client, and one to warm up
STATUSES = ["pending", "online", "error", "disabled"]
KINDS = ["rtsp", "rtmp", "hls", "http"]


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
    capture it queues runs elsewhere. 64 clients at once, one request per stream, so none
    joins another's job."""
    headers = {"Authorization": f"Bearer {token}"}
    accepted: list[float] = []
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def one(stream: uuid.UUID) -> None:
            started = time.perf_counter()
            r = await client.post(f"/api/v1/streams/{stream}/snapshots")
            accepted.append(time.perf_counter() - started)
            assert r.status_code == 202, r.text

        async def worker(streams: list[uuid.UUID]) -> None:
            for stream in streams:
                await one(stream)

        await one(data.snap_streams[0])  # warm: connection, statements
        accepted.clear()
        rest = data.snap_streams[1:]
        started = time.perf_counter()
        await asyncio.gather(*(worker(rest[i::CONNECTIONS]) for i in range(CONNECTIONS)))
        rate = len(rest) / (time.perf_counter() - started)
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
        f"snapshot request answered (202), {CONNECTIONS} clients at once",
        f"{ms(accepted)} ({rate:,.0f} req/s)",
        "the ffmpeg capture it queues (720p H.264 file)",
        ms(captures),
        p50_ratio(captures, accepted),
    )


# --- the run ------------------------------------------------------------------------------


async def fill_naive_cache(
    base: str, redis_url: str, prefix: str, requests: list[tuple[str, str, str]]
) -> None:
    """The naive peer's entries: the api's own answers, under the peer's keys."""
    redis = create_redis(redis_url)
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        sem = asyncio.Semaphore(16)

        async def one(path: str, token: str) -> None:
            async with sem:
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            authorization = f"Bearer {token}"
            await redis.set(naive_key(prefix, path, authorization), r.content)

        await asyncio.gather(*(one(p, t) for _, p, t in {*requests}))
    await redis.aclose()


def wrk_rounds(
    env: dict[str, str], folder: Path, scripts: dict[str, Path], naive_prefix: str
) -> dict[str, list[Wrk]]:
    """Every wrk row, ``ROUNDS`` times over; each round starts each server afresh."""
    log = folder / "servers.log"
    api = [str(BIN / "lookout-api")]
    runs: dict[str, list[Wrk]] = {}

    def measure(name: str, base: str, script: str) -> None:
        measured = throughput(base, scripts[script], DURATION_S)
        runs.setdefault(name, []).append(measured)
        print(f"  {name}: {measured.figure()}", flush=True)

    for n in range(ROUNDS):
        print(f"round {n + 1} of {ROUNDS}", flush=True)
        with server(api, env | {"LOOKOUT_CACHE": "on"}, log) as (base, pid):
            for row in ("single", "list"):
                measure(f"lookout {row}", base, row)
            if n == 0 and PROFILE:  # before the slower rows leave requests in flight
                flame_graph(pid, base, scripts["single"], FLAME_GRAPH, DURATION_S)
                flame_graph(pid, base, scripts["list"], LIST_FLAME_GRAPH, DURATION_S)
            for row in ("counts", "dashboard"):
                measure(f"lookout {row}", base, row)
        with server(api, env | {"LOOKOUT_CACHE": "off"}, log) as (base, _):
            for row in ("single", "list"):
                measure(f"off {row}", base, row)
        peer = [sys.executable, "-m", "bench.api_peers"]
        with server([*peer, "bare", "{port}"], env, log, ready="/") as (base, _):
            measure("bare single", base, "single")
        naive_env = env | {"BENCH_NAIVE_PREFIX": naive_prefix}
        with server([*peer, "naive", "{port}"], naive_env, log, ready="/docs") as (base, _):
            for row in ("single", "list"):
                measure(f"naive {row}", base, row)
    return runs


def throughput_rows(runs: dict[str, list[Wrk]]) -> tuple[list[Row], str]:
    """The table's rows (each the median round), and every round's figures for the notes."""
    med = {name: spread(r)[0] for name, r in runs.items()}
    rows: list[Row] = []
    for row, what in (
        ("single", f"GET /api/v1/streams/{{id}}, {CONNECTIONS} connections, cached"),
        ("list", f"first list page with total, {CONNECTIONS} connections, cached"),
    ):
        ours = med[f"lookout {row}"]
        peers = [("naive FastAPI + redis.get", f"naive {row}"), ("LOOKOUT_CACHE=off", f"off {row}")]
        if row == "single":
            peers.insert(0, ("bare Starlette, fixed bytes", "bare single"))
        for name, key in peers:
            rows.append(Row(what, ours.figure(), name, med[key].figure(), ours.rps / med[key].rps))
    for row, what in (
        ("counts", "GET /api/v1/counts"),
        ("dashboard", "GET /api/v1/dashboard/summary"),
    ):
        ours = med[f"lookout {row}"]
        rows.append(
            Row(
                f"{what}, {CONNECTIONS} connections",
                ours.figure(),
                "cached single read (same run)",
                med["lookout single"].figure(),
                ours.rps / med["lookout single"].rps,
            )
        )
    lines = [
        f"- {name}: " + ", ".join(w.figure() for w in r) + f"; req/s min/median/max {spread(r)[1]}"
        for name, r in runs.items()
    ]
    return rows, "\n".join(lines)


async def main() -> None:
    rng = random.Random(4)
    settings = ApiSettings(redis_prefix=f"bench-api-{uuid.uuid4().hex[:8]}:")
    codec = token_codec(settings)
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-api-"))
    media = folder / "media"
    media.mkdir()
    video = make_video(media)
    sink = OtlpSink()
    # The api as make run and the image run it: default settings (INFO logs, the read
    # cache and its local layer on), traces exported as compose does (default sampler).
    env = os.environ | {
        "LOOKOUT_REDIS_PREFIX": settings.redis_prefix,
        "LOOKOUT_MEDIA_DIR": str(media),
        "LOOKOUT_STORAGE_DIR": str(folder / "snapshots"),
        "LOOKOUT_DEFAULT_SNAPSHOT_REQUESTS_PER_MINUTE": "100000",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
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
        counts = [("GET", "/api/v1/counts", tokens[t]) for t in data.tenants]
        dashboard = [("GET", "/api/v1/dashboard/summary", tokens[t]) for t in data.tenants]
        scripts = {
            name: wrk_script(folder, requests)
            for name, requests in (
                ("single", single),
                ("list", first_pages),
                ("counts", counts),
                ("dashboard", dashboard),
            )
        }
        naive_prefix = settings.redis_prefix + "naive:"
        with server([str(BIN / "lookout-api")], env, folder / "servers.log") as (base, _):
            await fill_naive_cache(
                base, settings.redis_url.get_secret_value(), naive_prefix, single + first_pages
            )
        runs = wrk_rounds(env, folder, scripts, naive_prefix)
        # A write checks its account in Postgres: the snapshot requests need a real operator.
        operator = await pool.fetchval(
            """INSERT INTO users (id, tenant_id, email, password_hash, role)
               VALUES ($1, $2, $3, 'unused', 'operator') RETURNING id""",
            uuid.uuid4(),
            data.snap_tenant,
            f"bench-{uuid.uuid4().hex[:8]}@example.com",
        )
        operator_token = codec.issue(operator, data.snap_tenant, "operator", timedelta(hours=2))
        with server([str(BIN / "lookout-api")], env, folder / "servers.log") as (base, _):
            snap = await snapshot_row(base, operator_token, data, video, media)
        wrk_table, per_round = throughput_rows(runs)
        rows = [
            *wrk_table,
            *await pagination_rows(pool, data.big),
            *await total_rows(pool, settings, data.big, big_size),
            snap,
        ]
        scale = "BENCH_SCALE=small" if SMALL else "full scale"
        publish(
            "api",
            "API gateway: cached reads against their peers, pagination, totals, snapshot requests",
            rows,
            notes=f"""{scale}: {STREAMS:,} streams over {TENANTS:,} tenants (COPY; the largest
tenant holds {big_size:,}), counts from `lookout-count-aggregator rebuild`. Throughput rows:
`wrk -t1 -c{CONNECTIONS} -d{DURATION_S}s` after a {WARM_S} s warm-up (every entry cached), {ROUNDS} round(s), each server
started afresh per round; the table shows the round with the median req/s, every round is
listed below. One process each (one uvicorn worker, uvloop + httptools) on the same 2 cores
as Postgres, Redis and wrk itself. Lookout runs as `make run` and the image run it: default
settings (read cache with its in-process layer, INFO JSON logs with one access line per
request, written to a file), traces exported over OTLP/HTTP (default sampler,
parent-based 1 in 10) to a sink. Peers, under the same uvicorn options without an access
log: bare Starlette answering fixed bytes (the ceiling), and the naive cache a user would
write (FastAPI, a Bearer header check, `await redis.get(key)`, the bytes returned; filled
with Lookout's own answers). Viewer tokens; single reads pick one of {len(single):,}
streams of every tenant at random, list reads the first page (50 streams and the total) of
one of {TENANTS:,} tenants at random, counts and dashboard one of {TENANTS:,} tenants.
Ratios: throughput rows are measured / baseline req/s; latency rows are baseline p50 /
measured p50. The offset baseline calls the api's list query directly: the api itself
refuses offsets past {100_000:,}. COUNT_CAP for SQL totals is {COUNT_CAP:,}.
{"Flame graphs (py-spy) of the cached reads: `bench/results/api-cached-read.svg` (single) and `api-cached-list.svg` (first page)." if PROFILE else ""}

Every round (req/s, p50, p99):

{per_round}""",
        )
    finally:
        print("cleaning up", flush=True)
        sink.close()
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
