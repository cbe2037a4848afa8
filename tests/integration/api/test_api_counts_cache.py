"""Counts and dashboard summaries answered from each process's read cache: a copy is served
without Redis until the aggregator changes the scope's counts (client tracking names the
hash), a stream write of the tenant drops it, a dashboard is at most its bound old, and
answers counted in SQL are never kept (nothing would say when they change)."""

from __future__ import annotations

import asyncio
import time

import pytest
from lookout_api.metrics import CACHE_REQUESTS as REQUESTS

from .conftest import Api
from .test_api_cache_replicas import tracking_up
from .test_api_counts import write_hash

BOUND_SECONDS = 2.0  # an invalidation reaches the process well within this, even loaded


def hits(kind: str) -> float:
    return float(REQUESTS.labels(kind, "hit")._value.get())


async def counts_until(api: Api, headers: dict[str, str], wanted: int) -> float:
    """Seconds until /counts answers ``streams_total == wanted``; fails past the bound."""
    started = time.monotonic()
    while True:
        r = await api.client.get("/api/v1/counts", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["counts"].get("streams_total") == wanted:
            return time.monotonic() - started
        assert time.monotonic() - started < BOUND_SECONDS, r.json()
        await asyncio.sleep(0.005)


async def test_counts_are_served_from_the_process_until_the_aggregator_changes_them(
    api: Api,
) -> None:
    await tracking_up(api.app.state.deps)
    tenant, viewer = await api.tenant_user("viewer")
    other, other_viewer = await api.tenant_user("viewer")
    await write_hash(api, tenant, {"streams_total": 7})
    await write_hash(api, other, {"streams_total": 70})
    await counts_until(api, viewer, 7)
    await counts_until(api, other_viewer, 70)
    before = hits("counts")
    for _ in range(3):
        r = await api.client.get("/api/v1/counts", headers=viewer)
        assert r.json() == {"scope": tenant, "counts": {"streams_total": 7}, "source": "counts"}
    assert hits("counts") - before == 3  # no Redis read, no route
    # Each tenant its own answer, from the same cache.
    r = await api.client.get("/api/v1/counts", headers=other_viewer)
    assert r.json()["counts"] == {"streams_total": 70}
    # The aggregator applies an event: the copy goes, the next reads see the new count.
    await write_hash(api, tenant, {"streams_total": 8})
    took = await counts_until(api, viewer, 8)
    print(f"counts fresh {took * 1000:.1f} ms after the aggregator's write")
    assert (await api.client.get("/api/v1/counts", headers=other_viewer)).json()["counts"] == {
        "streams_total": 70
    }


async def test_counts_counted_in_sql_are_never_kept(api: Api) -> None:
    await tracking_up(api.app.state.deps)
    _, operator = await api.tenant_user("operator")  # no hash: the api counts in SQL
    await api.stream(operator)
    before = hits("counts")
    for _ in range(3):
        r = await api.client.get("/api/v1/counts", headers=operator)
        assert r.json()["source"] == "sql" and r.json()["counts"]["streams_total"] == 1
    assert hits("counts") == before
    await api.stream(operator, name="second")
    r = await api.client.get("/api/v1/counts", headers=operator)
    assert r.json()["counts"]["streams_total"] == 2


@pytest.mark.api_settings(dashboard_cache_seconds=0.5)
async def test_a_dashboard_is_kept_no_longer_than_its_bound_nor_past_a_write(api: Api) -> None:
    await tracking_up(api.app.state.deps)
    tenant, operator = await api.tenant_user("operator")
    await write_hash(api, tenant, {"streams_total": 3})

    async def summary() -> dict[str, object]:
        r = await api.client.get("/api/v1/dashboard/summary", headers=operator)
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    first = await summary()
    before = hits("dashboard")
    assert await summary() == first
    assert hits("dashboard") == before + 1
    # A write of the tenant drops it at once: its quota usage moves with the new stream.
    await api.stream(operator)
    assert (await summary())["quotas"] != first["quotas"]
    # Past its bound it is made again, even with nothing invalidated.
    await summary()
    await asyncio.sleep(0.6)
    before = hits("dashboard")
    await summary()
    assert hits("dashboard") == before
    # The aggregator's counts move: the dashboard's counts follow as /counts' do.
    await summary()
    await write_hash(api, tenant, {"streams_total": 4})
    started = time.monotonic()
    while (await summary())["counts"] != {"source": "counts", "counts": {"streams_total": 4}}:
        assert time.monotonic() - started < BOUND_SECONDS
        await asyncio.sleep(0.005)
