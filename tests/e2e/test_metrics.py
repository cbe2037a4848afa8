"""Every service's ``/metrics`` passes ``promtool check metrics`` without a single finding and
carries the metrics operators rely on, with the series a snapshot request leaves behind."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import System
from .test_first_flow import job_done, make_video, operator_token, wait_for

pytestmark = pytest.mark.e2e
PROMTOOL = "/usr/bin/promtool"

HTTP = ["lookout_http_requests_total", "lookout_http_request_duration_seconds"]
CONSUMER = [
    "lookout_messages_processed_total",
    "lookout_message_processing_duration_seconds",
    "lookout_queue_messages_ready",
    "lookout_queue_messages_unacked",
    "lookout_queue_consumers",
    "lookout_dead_letter_messages",
]
PUBLISHER = [
    "lookout_messages_published_total",
    "lookout_outbox_backlog_messages",
    "lookout_outbox_oldest_age_seconds",
]
# The metric families each service must expose (by the name in their "# TYPE" line).
EXPECTED = {
    "api": [*HTTP, *PUBLISHER, "lookout_cache_requests_total", "lookout_cache_seconds"],
    "snapshot-worker": [
        *HTTP,
        *CONSUMER,
        *PUBLISHER,
        "lookout_ffmpeg_runs_total",
        "lookout_ffmpeg_duration_seconds",
    ],
    "count-aggregator": [
        *HTTP,
        *CONSUMER,
        "lookout_aggregator_applies_total",
        "lookout_aggregator_apply_duration_seconds",
        "lookout_count_drift",
    ],
    "notifier": [*HTTP, *CONSUMER, "lookout_ws_connections", "lookout_ws_events_total"],
}
# The queue each consuming service reads, as its metrics name it.
QUEUES = {
    "snapshot-worker": ["snapshot.capture", "stream.probe"],
    "count-aggregator": ["count-aggregator.events"],
    "notifier": ["notifier.events", "notifier.webhooks"],
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(system: System, service: str) -> str:
    r = httpx.get(f"{system.url(service)}/metrics", timeout=10)
    assert r.status_code == 200
    return r.text


def samples(exposition: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def declared(exposition: str) -> set[str]:
    return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}


async def test_every_service_passes_promtool_and_carries_its_metrics(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=10) as client:
        _, token = await operator_token(system, client)
        headers = {"Authorization": f"Bearer {token}"}
        r = await client.post(
            "/api/v1/streams", json={"name": "Measured", "url": make_video(system)}, headers=headers
        )
        assert r.status_code == 201, r.text
        r = await client.post(f"/api/v1/streams/{r.json()['id']}/snapshots", headers=headers)
        assert r.status_code == 202, r.text
        await job_done(client, headers, r.json()["job_id"])

    # The capture and the probe the new stream asked for have both been counted.
    async def ffmpeg_and_ffprobe_ran() -> bool:
        found = samples(scrape(system, "snapshot-worker"))
        return all(
            (value(found, "lookout_ffmpeg_runs_total", tool=tool, outcome="succeeded") or 0) >= 1
            for tool in ("ffmpeg", "ffprobe")
        )

    await wait_for(ffmpeg_and_ffprobe_ran, 30, "the worker's ffmpeg metrics")

    # A quorum queue may report a new consumer only a moment after it was registered; the
    # depths are read again every 15 s.
    async def consumers_seen() -> bool:
        found = {service: samples(scrape(system, service)) for service in QUEUES}
        return all(
            (value(found[service], "lookout_queue_consumers", queue=q) or 0) >= 1
            and value(found[service], "lookout_dead_letter_messages", queue=q) is not None
            for service, queues in QUEUES.items()
            for q in queues
        )

    await wait_for(consumers_seen, 40, "every consumer in lookout_queue_consumers")

    for service, names in EXPECTED.items():
        exposition = scrape(system, service)
        lint = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=exposition.encode(), capture_output=True
        )
        findings = (lint.stdout + lint.stderr).decode()
        assert lint.returncode == 0 and not findings.strip(), f"{service}: {findings}"
        missing = set(names) - declared(exposition)
        assert not missing, f"{service} lacks {sorted(missing)}"
        found = samples(exposition)
        for queue in QUEUES.get(service, []):
            for gauge in (
                "lookout_queue_messages_ready",
                "lookout_queue_messages_unacked",
                "lookout_dead_letter_messages",
            ):
                depth = value(found, gauge, queue=queue)
                assert depth is not None and depth >= 0, f"{service}: no {gauge}{{queue={queue}}}"
            assert (value(found, "lookout_queue_consumers", queue=queue) or 0) >= 1, queue

    worker = samples(scrape(system, "snapshot-worker"))
    assert (
        value(
            worker,
            "lookout_ffmpeg_duration_seconds_count",
            tool="ffmpeg",
            outcome="succeeded",
        )
        or 0
    ) >= 1
    aggregator = samples(scrape(system, "count-aggregator"))
    assert (value(aggregator, "lookout_aggregator_applies_total", outcome="applied") or 0) >= 1
