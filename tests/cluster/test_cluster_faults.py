"""Faults under a steady load on the three-node cluster with two replicas of every service.

Each test injects one fault while :func:`tests.cluster.load.drive` runs, heals it, then
checks that nothing acknowledged was lost or doubled: every 201 stream is in Postgres, every
202 snapshot job ended once with exactly one snapshot, the aggregator's counts equal SQL,
every WebSocket subscriber got every job's frame or was told ``recovered: false``, every
work queue has consumers and no dead letter appeared. The longest stall (no frame reaching
any subscriber while requests kept coming) is printed and kept in ``STALLS``."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from lookout_shared import topology
from redis.asyncio import Redis

from tests.cluster.conftest import BIN, PASSWORD, Replicas
from tests.cluster.faults import NODES, queue_leaders, rabbit_ctl, stack, vhost
from tests.cluster.load import Ledger, Subscriber, drive

STALLS: dict[str, float] = {}


@dataclass
class World:
    replicas: Replicas
    pool: asyncpg.Pool
    tenant_id: str
    headers: dict[str, str]
    streams: list[str]
    video: str
    ledger: Ledger
    subscribers: list[Subscriber]


async def _login(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
async def world(replicas: Replicas, pool: asyncpg.Pool) -> AsyncIterator[World]:
    video = replicas.media / "camera.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=5",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    root_email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    subprocess.run(
        [str(BIN / "lookout-api"), "create-superuser", root_email],
        env=replicas.env,
        check=True,
        capture_output=True,
    )
    async with httpx.AsyncClient(base_url=replicas.url("api-a"), timeout=10) as client:
        root = {"Authorization": f"Bearer {await _login(client, root_email)}"}
        r = await client.post(
            "/api/v1/tenants", json={"name": f"cluster-{uuid.uuid4().hex[:6]}"}, headers=root
        )
        assert r.status_code == 201, r.text
        tenant_id = r.json()["id"]
        email = f"op-{uuid.uuid4().hex[:6]}@example.com"
        r = await client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": "operator", "tenant_id": tenant_id},
            headers=root,
        )
        assert r.status_code == 201, r.text
        token = await _login(client, email)
        headers = {"Authorization": f"Bearer {token}"}
        streams = []
        for name in ("cam-1", "cam-2"):
            r = await client.post(
                "/api/v1/streams", json={"name": name, "url": video.as_uri()}, headers=headers
            )
            assert r.status_code == 201, r.text
            streams.append(r.json()["id"])
    ledger = Ledger()
    rooms = [f"stream:{s}" for s in streams]
    subscribers = [
        Subscriber(replicas, token, rooms, notifier, ledger)
        for notifier in ("notifier-a", "notifier-b")
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in subscribers]
    await asyncio.sleep(2)  # subscribed before the first event
    yield World(replicas, pool, tenant_id, headers, streams, video.as_uri(), ledger, subscribers)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _eventually(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last is True:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: {last}")


async def _check_nothing_lost_or_doubled(world: World) -> None:
    pool, ledger, tenant = world.pool, world.ledger, uuid.UUID(world.tenant_id)

    async def jobs_done() -> Any:
        rows = await pool.fetch(
            "SELECT id::text, status FROM snapshot_jobs WHERE tenant_id = $1", tenant
        )
        status = {r["id"]: r["status"] for r in rows}
        missing = [j for j in ledger.jobs if j not in status]
        pending = [j for j, s in status.items() if s != "succeeded"]
        return True if not missing and not pending else {"missing": missing, "pending": pending}

    await _eventually(jobs_done, 180, "acknowledged snapshot jobs not all succeeded")
    doubled = await pool.fetch(
        "SELECT job_id FROM snapshots WHERE tenant_id = $1 GROUP BY job_id HAVING count(*) > 1",
        tenant,
    )
    assert not doubled
    orphans = await pool.fetchval(
        """SELECT count(*) FROM snapshot_jobs j WHERE j.tenant_id = $1
           AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.job_id = j.id)""",
        tenant,
    )
    assert orphans == 0
    stored = {
        r["id"]
        for r in await pool.fetch("SELECT id::text FROM streams WHERE tenant_id = $1", tenant)
    }
    assert set(ledger.streams) <= stored

    redis = Redis.from_url(world.replicas.env["LOOKOUT_REDIS_URL"])
    key = f"{world.replicas.env['LOOKOUT_REDIS_PREFIX']}counts:tenant:{world.tenant_id}"

    async def counts_equal_sql() -> Any:
        counts = await redis.hgetall(key)
        sql = {
            b"snapshots_total": await pool.fetchval(
                "SELECT count(*) FROM snapshots WHERE tenant_id = $1", tenant
            ),
            b"streams_total": await pool.fetchval(
                "SELECT count(*) FROM streams WHERE tenant_id = $1", tenant
            ),
        }
        got = {k: int(counts.get(k, 0)) for k in sql}
        return True if got == sql else {"redis": got, "sql": sql}

    try:
        await _eventually(counts_equal_sql, 60, "counts differ from SQL")
    finally:
        await redis.aclose()

    async def frames_complete() -> Any:
        missing: dict[str, list[str]] = {}
        for sub in world.subscribers:
            for job, stream in ledger.jobs.items():
                room = f"stream:{stream}"
                if job not in sub.seen.get(room, set()) and room not in sub.unrecovered:
                    missing.setdefault(sub.notifier, []).append(job)
        return missing if missing else True

    await _eventually(frames_complete, 60, "subscribers missing frames")

    async def queues_served() -> Any:
        out = await asyncio.to_thread(
            rabbit_ctl,
            1,
            "rabbitmqctl",
            "list_queues",
            "-q",
            "-p",
            vhost(),
            "--no-table-headers",
            "name",
            "messages",
            "consumers",
        )
        rows = {
            p[0]: (int(p[1]), int(p[2])) for p in map(str.split, out.splitlines()) if len(p) == 3
        }
        wrong = {
            name: rows.get(name)
            for name in (
                topology.SNAPSHOT_CAPTURE,
                topology.STREAM_PROBE,
                topology.AGGREGATOR_EVENTS,
            )
            if rows.get(name, (0, 0))[1] < 2
        }
        dead = {n: m for n, (m, _) in rows.items() if n.endswith(".dead") and m}
        return True if not wrong and not dead else {"unserved": wrong, "dead": dead}

    await _eventually(queues_served, 60, "queues without consumers or with dead letters")


async def _under_load(world: World, seconds: float, fault: Any) -> float:
    """Run the load for ``seconds`` with ``fault()`` started after 4 s; the longest stall."""
    acked_before = len(world.ledger.jobs)
    load = asyncio.create_task(
        drive(world.replicas, world.headers, world.streams, world.video, world.ledger, seconds)
    )
    await asyncio.sleep(4)
    started = time.monotonic()
    await fault()
    await load
    acked = len(world.ledger.jobs) - acked_before
    told = {room for sub in world.subscribers for room in sub.unrecovered}
    print(f"\n{acked} jobs acknowledged; rooms told recovered: false: {len(told)}")
    assert acked >= 10, "the load did not run: nothing would be checked"
    return world.ledger.longest_gap(started, time.monotonic())


def _leaders() -> dict[str, int]:
    for node in NODES:
        try:
            return queue_leaders(node)
        except subprocess.CalledProcessError:
            continue
    raise AssertionError("no node answers")


async def test_kill_the_node_leading_the_capture_queue(world: World) -> None:
    # Quorum queue leaders spread over the nodes: the capture queue's is killed, and the
    # events queue's goes with it when both sit on one node (printed either way).
    leaders = _leaders()
    leader = leaders[topology.SNAPSHOT_CAPTURE]
    print(f"\nleaders: {leaders}")

    async def fault() -> None:
        await asyncio.to_thread(stack, "kill-node", str(leader))
        await asyncio.sleep(10)
        await asyncio.to_thread(stack, "start-node", str(leader))

    stall = await _under_load(world, 26, fault)
    STALLS["kill -9 the capture queue's leader"] = stall
    print(f"\nkill -9 node {leader} (leader of {topology.SNAPSHOT_CAPTURE}): stall {stall:.1f}s")
    await _check_nothing_lost_or_doubled(world)
    assert stall < 5


async def test_pause_a_node_longer_than_net_ticktime(world: World) -> None:
    node = _leaders()[topology.AGGREGATOR_EVENTS]

    async def fault() -> None:
        await asyncio.to_thread(stack, "pause-node", str(node))
        try:
            await asyncio.sleep(20)
        finally:
            await asyncio.to_thread(stack, "resume-node", str(node))

    stall = await _under_load(world, 32, fault)
    STALLS["SIGSTOP a node for 20 s"] = stall
    print(f"\nSIGSTOP node {node} for 20 s: stall {stall:.1f}s")
    await asyncio.to_thread(
        rabbit_ctl, node, "rabbitmqctl", "await_online_nodes", "3", "--timeout", "120"
    )
    await _check_nothing_lost_or_doubled(world)
    assert stall < 30


async def test_kill_one_replica_of_each_service(world: World) -> None:
    async def fault() -> None:
        for service in ("api", "snapshot-worker", "count-aggregator", "notifier"):
            world.replicas.kill(f"{service}-a")
            await asyncio.sleep(3)
            world.replicas.start(f"{service}-a")
            await asyncio.to_thread(world.replicas.wait_ready, f"{service}-a")

    stall = await _under_load(world, 30, fault)
    STALLS["kill -9 one replica of each service"] = stall
    print(f"\nkill -9 one replica of each service in turn: stall {stall:.1f}s")
    await _check_nothing_lost_or_doubled(world)
    # No target is set for a replica's loss; the bound only catches a system that stopped.
    # Restarting a replica costs seconds of CPU that the captures share on two cores.
    assert stall < 15
