"""Stream state rules: what a probe's result or failure makes of a stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lookout_snapshot_worker.domain.streams import ProbeResult, Stream

NOW = datetime(2025, 1, 1, tzinfo=UTC)


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
