"""One REST call that requests a snapshot yields one trace across all four services.

The services export OTLP/HTTP to a receiver inside the test (see ``otlp_receiver``); the
client sends its own ``traceparent`` so the trace id is known in advance.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest

from .conftest import System
from .test_first_flow import job_done, make_video, operator_token

pytestmark = pytest.mark.e2e
SERVICES = {
    "lookout-api",
    "lookout-snapshot-worker",
    "lookout-count-aggregator",
    "lookout-notifier",
}


async def test_one_trace_from_the_request_to_every_service(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=10) as client:
        _, token = await operator_token(system, client)
        headers = {"Authorization": f"Bearer {token}"}
        r = await client.post(
            "/api/v1/streams", json={"name": "Traced", "url": make_video(system)}, headers=headers
        )
        stream_id = r.json()["id"]
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        r = await client.post(
            f"/api/v1/streams/{stream_id}/snapshots",
            headers={**headers, "traceparent": f"00-{trace_id}-{client_span}-01"},
        )
        assert r.status_code == 202, r.text
        await job_done(client, headers, r.json()["job_id"])

    # Spans arrive in batches, a parent often after its children: wait for a complete tree.
    deadline = time.monotonic() + 60
    while True:
        spans = system.otlp.trace(trace_id)
        by_id = {s.span_id: s for s in spans}
        # Every span's parent is the client's span or another span of this trace: no orphans.
        orphans = [
            s for s in spans if s.parent_span_id not in by_id and s.parent_span_id != client_span
        ]
        complete = {s.service for s in spans} >= SERVICES and not orphans
        if complete or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {s.service for s in spans} >= SERVICES, sorted({(s.service, s.name) for s in spans})
    assert not orphans, [(o.service, o.name) for o in orphans]

    def chain(span_id: str) -> list[str]:
        names = []
        while span_id in by_id:
            span = by_id[span_id]
            names.append(f"{span.service}:{span.name}")
            span_id = span.parent_span_id
        return names

    # Some of the aggregator's and the notifier's work (the events the worker emitted)
    # descends from the worker's, and everything descends from the api's request span.
    for consumer in ("lookout-count-aggregator", "lookout-notifier"):
        ancestries = [
            chain(s.span_id) for s in spans if s.service == consumer and s.name.endswith(" process")
        ]
        assert ancestries, consumer
        assert all(a[-1].startswith("lookout-api:POST ") for a in ancestries), ancestries
        assert any(
            any(step.startswith("lookout-snapshot-worker:") for step in a) for a in ancestries
        ), ancestries
