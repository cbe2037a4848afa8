"""Reading ffmpeg's stderr: which failures are worth another attempt."""

from __future__ import annotations

import pytest
from lookout_snapshot_worker.domain.failures import classify_stderr


@pytest.mark.parametrize(
    "stderr",
    [
        "[tcp @ 0x1] Connection to tcp://10.0.0.5:554 failed: Connection refused\n"
        "rtsp://cam/live: Connection refused",
        "[tcp @ 0x1] Connection reset by peer",
        "rtsp://cam/live: Connection timed out",
        "[http @ 0x1] Server returned 5XX Server Error reply",
        "[rtsp @ 0x1] method DESCRIBE failed: 503 Service Unavailable",
        "something nobody has seen before",
    ],
)
def test_transient_failures(stderr: str) -> None:
    assert classify_stderr(stderr).transient


@pytest.mark.parametrize(
    "stderr",
    [
        "[http @ 0x1] HTTP error 404 Not Found\nhttp://cam/x.mp4: Server returned 404 Not Found",
        "http://cam/x: Server returned 401 Unauthorized (authorization failed)",
        "http://cam/x: Server returned 403 Forbidden (access denied)",
        "[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized",
        "file:///media/bad.mp4: Invalid data found when processing input",
        "file:///media/nope.mp4: No such file or directory",
        "[file @ 0x1] Protocol 'file' not on whitelist 'http,https,tcp,tls'!",
        "[mov,mp4 @ 0x1] Format not on whitelist 'matroska'",
        "Stream map '0:v:0' matches no streams.",
        # A permanent cause wins over the transient noise around it.
        "Connection timed out\nServer returned 404 Not Found",
    ],
)
def test_permanent_failures(stderr: str) -> None:
    assert not classify_stderr(stderr).transient


def test_words_in_the_url_do_not_decide_the_class() -> None:
    url = "http://cam.example/forbidden/404/stream.m3u8"
    failure = classify_stderr(f"{url}: Connection refused", source=url)
    assert failure.transient
    assert failure.reason == "<input>: Connection refused"


def test_credentials_never_reach_the_reason() -> None:
    url = "rtsp://admin:hunter2@cam.example/live"
    other = "rtsp://admin:hunter2@cam.example:554/live"  # ffmpeg's own spelling of the URL
    failure = classify_stderr(f"{url}: Connection refused\n{other}: oops", source=url)
    assert "hunter2" not in failure.reason


def test_reason_is_the_last_lines_and_bounded() -> None:
    stderr = "\n".join(f"line {i}" for i in range(10)) + "\n" + "x" * 2000
    reason = classify_stderr(stderr).reason
    assert reason.startswith("unrecognised failure: line 8 | line 9 | x")
    assert len(reason) <= 600


def test_an_egress_refusal_is_permanent_and_says_so() -> None:
    stderr = (
        "[hls @ 0x1] Opening 'http://127.0.0.2:9/s.ts' for reading\n"
        "lookout-egress: refused: address not allowed: 127.0.0.2 port 9\n"
    )
    failure = classify_stderr(stderr, source="http://127.0.0.1/x.m3u8")
    assert not failure.transient
    assert failure.reason == "refused: address not allowed: 127.0.0.2 port 9"
