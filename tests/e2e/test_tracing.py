"""One REST call that requests a snapshot yields one trace across all four services.

The services export OTLP/HTTP to a receiver inside the test (see ``otlp_receiver``); the
client sends its own ``traceparent`` so the trace id is known in advance. Our own spans
(the ffmpeg run, each batch's Lua apply, each WebSocket fan-out) are in it, under the message
that caused them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx
import pytest
import websockets

from .conftest import System
from .otlp_receiver import ReceivedSpan
from .test_first_flow import job_done, make_video, next_frame, operator_token

pytestmark = pytest.mark.e2e
SERVICES = {
    "lookout-api",
    "lookout-snapshot-worker",
    "lookout-count-aggregator",
    "lookout-notifier",
}
OUR_SPANS = {
    ("lookout-snapshot-worker", "ffmpeg capture"),
    ("lookout-count-aggregator", "apply_events"),
    ("lookout-notifier", "send stream:{id}"),
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
        # A subscriber, so the notifier has a room to fan the job's events out to.
        ws_url = f"ws://127.0.0.1:{system.url('notifier').rsplit(':', 1)[1]}/ws?token={token}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "room": f"stream:{stream_id}"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "subscribed"
            r = await client.post(
                f"/api/v1/streams/{stream_id}/snapshots",
                headers={**headers, "traceparent": f"00-{trace_id}-{client_span}-01"},
            )
            assert r.status_code == 202, r.text
            await job_done(client, headers, r.json()["job_id"])
            await next_frame(ws, "snapshot_job.succeeded")

    # Spans arrive in batches, a parent often after its children: wait for a complete tree.
    deadline = time.monotonic() + 60
    while True:
        spans = system.otlp.trace(trace_id)
        by_id = {s.span_id: s for s in spans}
        # Every span's parent is the client's span or another span of this trace: no orphans.
        orphans = [
            s for s in spans if s.parent_span_id not in by_id and s.parent_span_id != client_span
        ]
        names = {(s.service, s.name) for s in spans}
        # The apply of each entity the job touched, too: they may come in separate batches.
        applied = {
            entity_type
            for s in spans
            if (s.service, s.name) == ("lookout-count-aggregator", "apply_events")
            for entity_type in _strings(s.attributes.get("lookout.entity.types"))
        }
        complete = (
            {s.service for s in spans} >= SERVICES
            and names >= OUR_SPANS
            and {"snapshot", "snapshot_job"} <= applied
            and not orphans
        )
        if complete or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {s.service for s in spans} >= SERVICES, sorted({(s.service, s.name) for s in spans})
    assert names >= OUR_SPANS, sorted(names)
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

    def parent(span: ReceivedSpan) -> str:
        return chain(span.parent_span_id)[0]

    def named(service: str, name: str) -> list[ReceivedSpan]:
        return [s for s in spans if (s.service, s.name) == (service, name)]

    # The capture: one run under the capture command, first attempt; by a warm capture
    # child, which does not exit after it, so there is no exit code.
    [capture] = named("lookout-snapshot-worker", "ffmpeg capture")
    assert parent(capture) == "lookout-snapshot-worker:snapshot.capture process"
    assert capture.attributes["lookout.stream.id"] == stream_id
    assert capture.attributes["lookout.attempt"] == 1
    assert capture.attributes["lookout.outcome"] == "succeeded"
    assert "process.exit.code" not in capture.attributes
    assert capture.attributes["url.scheme"] == "file"

    # The aggregator applies a batch of events with one Lua call, under the batch's span;
    # no event applied twice. The job's events come by two paths (the api's outbox and the
    # worker), so one may arrive after a later version of its job and be dropped as stale.
    applies = named("lookout-count-aggregator", "apply_events")
    assert {parent(a) for a in applies} == {
        "lookout-count-aggregator:count-aggregator.events process"
    }
    assert {a.attributes["db.system"] for a in applies} == {"redis"}
    outcomes = [o for a in applies for o in _strings(a.attributes["lookout.outcomes"])]
    assert "applied" in outcomes and set(outcomes) <= {"applied", "stale"}, outcomes
    assert {"snapshot", "snapshot_job"} <= applied

    # Each event for the subscribed room reached its one connection, under its message.
    sends = named("lookout-notifier", "send stream:{id}")
    for send in sends:
        assert parent(send).startswith("lookout-notifier:") and parent(send).endswith(" process")
        assert send.attributes["messaging.destination.name"] == f"stream:{stream_id}"
        assert send.attributes["lookout.room.recipients"] == 1


def _strings(value: object) -> tuple[str, ...]:
    """A string-array attribute as received (absent: empty)."""
    assert value is None or isinstance(value, tuple), value
    return tuple(str(v) for v in value or ())
