"""Reading ffmpeg's stderr: which failures are worth another attempt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lookout_shared.contracts import ERROR_CATEGORIES
from lookout_snapshot_worker.domain.failures import (
    MediaError,
    classify_stderr,
    permanent,
    transient,
)

MIGRATIONS = Path(__file__).parents[3] / "services" / "api" / "migrations"


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
    assert failure.category == "not_allowed"


# stderr of ffmpeg 5.1 (-loglevel error) against loopback sources, as captured; the URL
# given to ffmpeg is SOURCE, the other URLs are ffmpeg's own spelling.
SOURCE = "rtsp://admin:hunter2@127.0.0.1:9/live?token=abc&channel=1"
REAL_STDERR = {
    "refused": (
        "[tcp @ 0x55d20a46d880] Connection to tcp://127.0.0.1:9?timeout=3000000 failed: "
        f"Connection refused\n{SOURCE}: Connection refused\n"
    ),
    "unauthorized": (
        "[rtsp @ 0x55e5b8dee9c0] method DESCRIBE failed: 401 Unauthorized\n"
        f"{SOURCE}: Server returned 401 Unauthorized (authorization failed)\n"
    ),
    "not_found": (
        "[rtsp @ 0x561e3f7819c0] method DESCRIBE failed: 404 Not Found\n"
        f"{SOURCE}: Server returned 404 Not Found\n"
    ),
    "invalid_media": (
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c8a95c98c0] moov atom not found\n"
        f"{SOURCE}: Invalid data found when processing input\n"
    ),
    "source_error": (
        "[http @ 0x55f567062100] Stream ends prematurely at 15, should be 18446744073709551615\n"
        f"{SOURCE}: Input/output error\n"
    ),
    "unreachable": (
        "[tcp @ 0x5601c3a1b2c0] Failed to resolve hostname cam.invalid: Name or service not known\n"
        f"{SOURCE}: Name or service not known\n"
    ),
}


@pytest.mark.parametrize(("category", "stderr"), REAL_STDERR.items())
def test_real_ffmpeg_failures_get_their_category(category: str, stderr: str) -> None:
    assert classify_stderr(stderr, source=SOURCE).category == category


@pytest.mark.parametrize("stderr", REAL_STDERR.values())
def test_reasons_hold_neither_heap_addresses_nor_the_source_url(stderr: str) -> None:
    reason = classify_stderr(stderr, source=SOURCE).reason
    assert not re.search(r"0x[0-9a-f]{6,}", reason), reason
    assert "hunter2" not in reason and "abc" not in reason and "/live" not in reason, reason


def test_heap_addresses_are_stripped_from_context_prefixes() -> None:
    reason = classify_stderr(REAL_STDERR["not_found"], source=SOURCE).reason
    assert reason == (
        "[rtsp] method DESCRIBE failed: 404 Not Found | <input>: Server returned 404 Not Found"
    )


def test_urls_ffmpeg_spells_its_own_way_are_masked_and_do_not_decide_the_category() -> None:
    # An http source spelled without its query: the credentials in it are still masked.
    stderr = "http://u:pw@127.0.0.1:8080/x.m3u8?Token=s3cr3t&pass=p4ss: Connection refused"
    failure = classify_stderr(stderr, source="http://127.0.0.1:8080/x.m3u8")
    assert failure.category == "refused"
    assert "pw@" not in failure.reason and "s3cr3t" not in failure.reason
    assert "p4ss" not in failure.reason
    # "timeout" in tcp://...?timeout= is ffmpeg's option, not what happened.
    assert classify_stderr(REAL_STDERR["refused"]).category == "refused"


@pytest.mark.parametrize(
    ("failure", "category"),
    [
        # The worker's own messages (guard, process bound, capture checks).
        (transient("resolving cam.example timed out"), "unreachable"),
        (permanent("cannot resolve cam.example"), "unreachable"),
        (permanent("refused to connect to cam.example: 10.0.0.5 is not a public address"),
         "not_allowed"),
        (permanent("refused to connect to 169.254.169.254: 169.254.169.254 is a cloud metadata "
                   "address"), "not_allowed"),
        (permanent("invalid stream url: scheme 'gopher' is not allowed"), "not_allowed"),
        (transient("timed out after 20s"), "timeout"),
        (transient("the RTSP server did not answer within 20 s"), "timeout"),
        (permanent("ffmpeg produced no frame (no decodable video?)"), "invalid_media"),
        (permanent("no video stream found"), "invalid_media"),
        (transient("cannot run ffmpeg: No such file or directory"), "unknown"),
        (transient("something nobody has seen before"), "unknown"),
    ],
)  # fmt: skip
def test_the_workers_own_failures_get_their_category(failure: MediaError, category: str) -> None:
    assert failure.category == category


def test_every_category_is_one_the_database_accepts() -> None:
    migration = next(MIGRATIONS.glob("*_error_categories.sql")).read_text()
    for column in ("error_category", "last_error_category"):
        listed = re.search(rf"{column} text CHECK \({column} IN \(([^)]*)\)\)", migration)
        assert listed is not None
        assert set(re.findall(r"'(\w+)'", listed[1])) == set(ERROR_CATEGORIES)
