"""Job state rules: a job moves forward only, each move with its version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from lookout_snapshot_worker.domain.jobs import Job, JobStateError

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
