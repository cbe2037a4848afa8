"""Job and stream state rules, and reading a JPEG's size."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from lookout_snapshot_worker.domain.jobs import Job, JobStateError
from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions
from lookout_snapshot_worker.domain.streams import ProbeResult, Stream

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def queued_job() -> Job:
    return Job(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "queued", attempts=0, version=1)


def test_a_job_moves_forward_with_its_version() -> None:
    running = queued_job().start(NOW)
    assert (running.status, running.attempts, running.version) == ("running", 1, 2)
    assert running.started_at == NOW
    snapshot_id = uuid.uuid4()
    done = running.succeed(snapshot_id, NOW, extra_attempts=2)
    assert (done.status, done.snapshot_id, done.attempts, done.version) == (
        "succeeded", snapshot_id, 3, 3,
    )  # fmt: skip
    assert done.finished and done.finished_at == NOW


def test_a_running_job_may_start_again_after_a_crash() -> None:
    again = queued_job().start(NOW).start(NOW)
    assert (again.status, again.attempts, again.version) == ("running", 2, 3)


def test_finished_jobs_never_move() -> None:
    failed = queued_job().start(NOW).fail("boom", "unknown", NOW)
    assert (failed.status, failed.error, failed.error_category) == ("failed", "boom", "unknown")
    with pytest.raises(JobStateError):
        failed.start(NOW)
    with pytest.raises(JobStateError):
        failed.fail("again", "unknown", NOW)
    with pytest.raises(JobStateError):
        queued_job().succeed(uuid.uuid4(), NOW)  # only a running job succeeds


def test_fail_bounds_the_reason() -> None:
    assert len(queued_job().fail("x" * 5000, "unknown", NOW).error or "") == 1000


def make_stream(enabled: bool = True) -> Stream:
    return Stream(
        uuid.uuid4(), uuid.uuid4(), "cam", "rtsp://cam/x", "rtsp",
        "pending" if enabled else "disabled", enabled, version=4,
    )  # fmt: skip


def test_probe_results_set_status_and_version() -> None:
    online = make_stream().probed(ProbeResult(640, 360, "h264"), NOW)
    assert (online.status, online.width, online.height, online.codec) == (
        "online", 640, 360, "h264",
    )  # fmt: skip
    assert online.version == 5 and online.updated_at == NOW
    broken = online.failed("404", "not_found", NOW)
    assert (broken.status, broken.last_error, broken.last_error_category, broken.version) == (
        "error", "404", "not_found", 6,
    )  # fmt: skip
    assert broken.width == 640  # what we knew stays known


def test_a_disabled_stream_stays_disabled_when_probed() -> None:
    assert make_stream(enabled=False).probed(ProbeResult(1, 1, "h264"), NOW).status == "disabled"


def test_jpeg_dimensions() -> None:
    # SOI, APP0 (16 bytes), SOF0 with height 360 and width 640.
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x11\x08\x01\x68\x02\x80\x03"
        + b"\x00" * 9
    )
    assert jpeg_dimensions(jpeg) == (640, 360)
    assert jpeg_dimensions(b"\x89PNG....") is None
    assert jpeg_dimensions(b"\xff\xd8\xff\xda\x00\x02") is None
    assert jpeg_dimensions(b"\xff\xd8") is None


def test_settings_accept_networks_as_csv_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from lookout_snapshot_worker.settings import WorkerSettings

    monkeypatch.setenv("LOOKOUT_ALLOWED_NETWORKS", "10.0.0.0/8, 127.0.0.1")
    assert [str(n) for n in WorkerSettings().allowed_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.setenv("LOOKOUT_ALLOWED_NETWORKS", '["fd00::/8"]')
    assert [str(n) for n in WorkerSettings().allowed_networks] == ["fd00::/8"]
    monkeypatch.delenv("LOOKOUT_ALLOWED_NETWORKS")
    settings = WorkerSettings()
    assert settings.allowed_networks == []
    assert (settings.worker_prefetch, settings.worker_concurrency, settings.capture_attempts) == (
        10, 8, 3,
    )  # fmt: skip
    assert (settings.probe_prefetch, settings.probe_concurrency) == (4, 2)
    assert settings.snapshots_per_stream == 100
    assert settings.service_name == "snapshot-worker"
