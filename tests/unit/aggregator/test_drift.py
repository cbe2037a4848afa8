"""The drift check as a handler, over the in-memory twins of Postgres and the count hashes."""

from __future__ import annotations

import uuid

from lookout_count_aggregator.adapters.memory import InMemoryHashes, InMemoryStates
from lookout_count_aggregator.domain.contributions import STREAM, Contribution
from lookout_count_aggregator.domain.drift import Drift
from lookout_count_aggregator.handlers.drift import DriftMonitor, check
from lookout_shared.count_rules import stream_fields

A, B, GONE = sorted(uuid.uuid4() for _ in range(3))


def stream(tenant: uuid.UUID) -> Contribution:
    return Contribution(STREAM, uuid.uuid4(), tenant, 1, stream_fields("online", "rtsp", 720, []))


def exact(streams: int) -> dict[str, int]:
    return dict.fromkeys(stream_fields("online", "rtsp", 720, []), streams)


async def test_a_full_check_covers_tenants_gone_from_postgres_and_the_platform() -> None:
    states = InMemoryStates([stream(A), stream(B), stream(B)])
    hashes = InMemoryHashes(
        {str(A): exact(1), str(B): exact(1), str(GONE): {"streams_total": 4}, None: {}}
    )
    drifts = await check(states, hashes)
    assert Drift(str(B), "streams_total", 2, 1) in drifts
    assert Drift(str(GONE), "streams_total", 0, 4) in drifts
    assert Drift("platform", "streams_total", 3, 0) in drifts
    assert not [d for d in drifts if d.scope == str(A)]
    # Only the tenants asked for: no platform, no tenant Postgres does not name.
    assert {d.scope for d in await check(states, hashes, [A, B])} == {str(B)}


async def test_a_sampled_check_reports_counts_only_for_the_dashboard() -> None:
    states = InMemoryStates([stream(A), stream(B)])
    hashes = InMemoryHashes({str(A): exact(1), str(B): {}})
    monitor = DriftMonitor(states, hashes, 60, "sampled", sample=2, settle_seconds=0)
    drifts = await monitor.check_once()
    assert {d.scope for d in drifts} == {str(B)}
    [report] = hashes.reports
    assert (report.mode, report.scopes, report.fields) == ("sampled", 1, len(drifts))
