"""API gateway rows: cached reads against ``LOOKOUT_CACHE=off``, keyset against offset
pagination, list totals from the aggregator's counts against SQL counting, and a snapshot
request's 202 against the capture it queues.

The data set is in api_data.py, the rows measured in process or by a client of their own in
api_rows.py, the processes and the load in api_servers.py.

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
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
from lookout_api.bootstrap import token_codec
from lookout_api.domain.listing import COUNT_CAP
from lookout_api.settings import ApiSettings
from lookout_shared.redis import create_redis

from bench.api_data import BIG_SHARE, SMALL, STREAMS, TENANTS, DataSet, load, rebuild_counts
from bench.api_peers import naive_key
from bench.api_rows import pagination_rows, snapshot_row, total_rows
from bench.api_servers import (
    BIN,
    CONNECTIONS,
    WARM_S,
    OtlpSink,
    Wrk,
    flame_graph,
    server,
    shipped_env,
    spread,
    throughput,
    wrk_script,
)
from bench.bench_worker import make_video
from bench.report import RESULTS, Row, publish

DURATION_S = 5 if SMALL else 10
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "1")))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
FLAME_GRAPH = RESULTS / "api-cached-read.svg"
LIST_FLAME_GRAPH = RESULTS / "api-cached-list.svg"


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
    env = shipped_env(settings.redis_prefix, media, folder / "snapshots", sink) | {
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
