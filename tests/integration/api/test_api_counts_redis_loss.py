"""Redis losing the counts, end to end: the api (writes through the outbox, counts reads), the
count-aggregator as an OS process, and the real Redis stopped, flushed or restarted from an
older snapshot. Nothing is dead-lettered, no wrong count is ever served as ``source:
counts``, and the counts equal SQL again within 30 s, by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from lookout_shared import topology
from lookout_shared.broker import Broker
from redis.asyncio import Redis

from .conftest import Api
from .test_api_cache import _stack, redis_server_stopped
from .test_api_counts import sql_counts

DEAD = f"{topology.AGGREGATOR_EVENTS}.dead"
HEAL_SECONDS = 30.0  # the bound the counts must be exact again within
SETTLE_SECONDS = 1.5  # a count still differing from SQL this much later is not in flight
OUTAGE_SECONDS = 30.0  # well past the old budget: 5 deliveries x a 0.5 s retry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def queue_depths(broker: Broker) -> dict[str, int]:
    channel = await broker.connection.channel()
    try:
        depths = {}
        for name in (topology.AGGREGATOR_EVENTS, DEAD):
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = queue.declaration_result.message_count or 0
        return depths
    finally:
        await channel.close()


@contextlib.asynccontextmanager
async def aggregator(
    api: Api, broker: Broker, stack: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """``lookout-count-aggregator`` on the api's key space, from empty queues; its ops client."""
    channel = await broker.connection.channel()
    for name in (topology.AGGREGATOR_EVENTS, DEAD):
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()
    port = free_port()
    env = {
        **os.environ,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        "LOOKOUT_REDIS_PREFIX": api.settings.redis_prefix,
        "LOOKOUT_AGGREGATOR_PORT": str(port),
        "LOOKOUT_DRIFT_CHECK_INTERVAL_SECONDS": "0",
        "LOOKOUT_LOG_LEVEL": "WARNING",
    }
    executable = shutil.which("lookout-count-aggregator")
    assert executable is not None
    process = await asyncio.create_subprocess_exec(executable, "serve", env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await until(lambda: ready(http), 60, "the aggregator never became ready")
            yield http
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def until(condition: Any, seconds: float, message: str) -> float:
    """Poll ``condition()`` until true; the seconds it took."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, message
        await asyncio.sleep(0.2)
    return time.monotonic() - started


class Reader:
    """Reads the counts as clients do (/counts, a list total, the dashboard) and fails when
    one serves as ``counts`` a value that differs from SQL and still differs a moment later
    (so not an event in flight: counts lost by Redis)."""

    def __init__(self, api: Api, db: asyncpg.Pool, tenant: str, headers: dict[str, str]):
        self.api, self.db, self.tenant, self.headers = api, db, tenant, headers

    async def exact_from_counts(self) -> bool:
        """Whether every read came from the counts (and matched SQL)."""
        from_counts, wrong = await self._read()
        if wrong:
            await asyncio.sleep(SETTLE_SECONDS)
            from_counts, wrong = await self._read()
            assert not wrong, f"wrong counts served as source: counts: {wrong}"
        return from_counts

    async def _read(self) -> tuple[bool, list[str]]:
        expected = await sql_counts(self.db, self.tenant)
        r = await self.api.client.get("/api/v1/counts", headers=self.headers)
        assert r.status_code == 200, r.text
        counts = r.json()
        r = await self.api.client.get("/api/v1/streams", headers=self.headers)
        assert r.status_code == 200, r.text
        listing = r.json()
        r = await self.api.client.get("/api/v1/dashboard/summary", headers=self.headers)
        assert r.status_code == 200, r.text
        summary = r.json()["counts"]
        wrong = []
        if counts["source"] == "counts" and counts["counts"] != expected:
            wrong.append(f"/counts {counts['counts']} != {expected}")
        total = expected.get("streams_total", 0)
        if listing["total_source"] == "counts" and listing["total"] != total:
            wrong.append(f"list total {listing['total']} != {total}")
        if summary["source"] == "counts" and summary["counts"] != expected:
            wrong.append(f"dashboard {summary['counts']} != {expected}")
        sources = {counts["source"], listing["total_source"], summary["source"]}
        return sources == {"counts"}, wrong


async def write_some(api: Api, headers: dict[str, str], n: int, tag: str) -> None:
    for i in range(n):
        s = await api.stream(headers, name=f"{tag}-{i}", tags=[tag])
        if i % 3 == 2:  # some deletions, so counts go down as well as up
            r = await api.client.delete(
                f"/api/v1/streams/{s['id']}", headers={**headers, "If-Match": f'"{s["id"]}.1"'}
            )
            assert r.status_code == 204, r.text


async def settled(api: Api, db: asyncpg.Pool) -> tuple[Reader, dict[str, str]]:
    """A tenant with streams whose counts come from Redis, equal to SQL; its operator."""
    tenant, operator = await api.tenant_user("operator")
    await write_some(api, operator, 6, "before")
    reader = Reader(api, db, tenant, operator)
    await until(reader.exact_from_counts, 60, "the counts never came from Redis")
    return reader, operator


async def test_redis_outage_dead_letters_nothing(
    api: Api, db: asyncpg.Pool, broker: Broker, stack: dict[str, str]
) -> None:
    async with aggregator(api, broker, stack) as ops:
        reader, operator = await settled(api, db)
        async with redis_server_stopped():
            await until(lambda: _not_ready(ops), 10, "/readyz did not show Redis down")
            # Writes keep coming: their events reach the aggregator, which cannot apply them.
            started, written = time.monotonic(), 0
            while time.monotonic() - started < OUTAGE_SECONDS:
                await write_some(api, operator, 3, f"during{written}")
                written += 3
                await asyncio.sleep(0.5)
            assert (await queue_depths(broker))[DEAD] == 0
        restarted = time.monotonic()  # empty: test stacks keep no Redis data
        await until(reader.exact_from_counts, HEAL_SECONDS, "not healed in time")
        print(
            f"\n{written} streams written during a {OUTAGE_SECONDS:.0f} s Redis outage; counts "
            f"equal to SQL {time.monotonic() - restarted:.1f} s after Redis returned"
        )
        await until(lambda: ready(ops), 10, "/readyz did not recover")
        await until(lambda: _drained(broker), 30, "events left in the queue")
    assert (await queue_depths(broker))[DEAD] == 0


async def _not_ready(ops: httpx.AsyncClient) -> bool:
    return not await ready(ops)


async def _drained(broker: Broker) -> bool:
    return (await queue_depths(broker))[topology.AGGREGATOR_EVENTS] == 0


async def test_flushed_redis_heals(
    api: Api, db: asyncpg.Pool, broker: Broker, redis: Redis, stack: dict[str, str]
) -> None:
    async with aggregator(api, broker, stack):
        reader, operator = await settled(api, db)
        flushed = time.monotonic()
        await redis.flushdb()
        # Events after the flush build counts from nothing: they must never be served.
        await write_some(api, operator, 3, "after-flush")
        await until(reader.exact_from_counts, HEAL_SECONDS, "not healed in time")
        print(f"\ncounts equal to SQL {time.monotonic() - flushed:.1f} s after FLUSHDB")
    assert (await queue_depths(broker))[DEAD] == 0


async def test_redis_restarted_from_an_older_snapshot_heals(
    api: Api, db: asyncpg.Pool, broker: Broker, redis: Redis, stack: dict[str, str]
) -> None:
    folder = Path(str((await redis.config_get("dir"))["dir"]))
    try:
        async with aggregator(api, broker, stack):
            reader, operator = await settled(api, db)
            await redis.save()  # the snapshot the restart goes back to
            # Counted after the snapshot: the restart loses these increments.
            await write_some(api, operator, 6, "after-save")
            await until(reader.exact_from_counts, 60, "the later writes were not counted")
            await asyncio.to_thread(_stack, "stop-redis")  # SHUTDOWN NOSAVE
            await asyncio.to_thread(_stack, "start-redis")  # loads the older dump.rdb
            restarted = time.monotonic()
            await until(reader.exact_from_counts, HEAL_SECONDS, "not healed in time")
            print(f"\ncounts equal to SQL {time.monotonic() - restarted:.1f} s after the restart")
    finally:
        (folder / "dump.rdb").unlink(missing_ok=True)  # later restarts start empty again
    assert (await queue_depths(broker))[DEAD] == 0
