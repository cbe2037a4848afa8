"""The access line: uvicorn's message and every field a log line carries (request id,
tenant), written without the formatter's full scrub, yet never with a secret of the query
string or of a path that is not known to hold only ids; written off the event loop by the
service's writer thread."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from lookout_shared.access_log import ACCESS, OffLoopLines, log_request, write_off_loop
from lookout_shared.logs import JsonFormatter, bind_tenant, request_context

TENANT = "0b6f8a52-4a4e-4a57-9f5e-1d2c3b4a5f60"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("tests"))
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    yield stream
    ACCESS.removeHandler(handler)


def scope(path: str, query: bytes = b"") -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "http_version": "1.1",
        "client": ("127.0.0.1", 5123),
    }


def test_the_access_line_keeps_uvicorns_message_and_the_request_fields(
    lines: io.StringIO,
) -> None:
    with request_context("abc123"):
        bind_tenant(TENANT)
        log_request(scope("/api/v1/streams/x", b"limit=50"), 200, plain_path=True)
    line = json.loads(lines.getvalue())
    assert line["msg"] == '127.0.0.1:5123 - "GET /api/v1/streams/x?limit=50 HTTP/1.1" 200'
    assert (line["logger"], line["level"], line["service"]) == ("lookout.access", "info", "tests")
    assert (line["request_id"], line["tenant_id"]) == ("abc123", TENANT)
    assert "ts" in line


def test_the_access_line_never_holds_a_secret_of_the_query_or_an_unknown_path(
    lines: io.StringIO,
) -> None:
    with request_context(f"id.{JWT}"):  # a caller's id that looks like a token
        log_request(scope(f"/ws/{JWT}", f"token={JWT}&key=lk_abcdefghijklmnopqrst".encode()), 404)
    text = lines.getvalue()
    assert JWT not in text and "lk_abcdefghijklmnopqrst" not in text
    assert json.loads(text)["msg"].startswith('127.0.0.1:5123 - "GET /ws/***?token=***')


def test_a_repeated_query_with_a_secret_is_scrubbed_every_time(lines: io.StringIO) -> None:
    """Scrubbed query strings are remembered (hot paths repeat theirs); a remembered one is
    the scrubbed text, never the raw one."""
    for _ in range(3):
        log_request(scope("/api/v1/streams", f"limit=5&token={JWT}".encode()), 200)
    assert JWT not in lines.getvalue()
    assert lines.getvalue().count("token=***") == 3


def off_loop(service: str = "tests") -> tuple[OffLoopLines, io.BytesIO]:
    stream = io.BytesIO()
    return OffLoopLines(service, stream, interval=60), stream  # flushed by the test


def test_the_line_written_off_the_loop_is_the_json_formatters_line(
    lines: io.StringIO,
) -> None:
    """Same keys, order and values as the formatter's line for the same request, built
    without a log record; only the writing is left to the thread."""
    writer, stream = off_loop()
    with request_context("abc123"):
        bind_tenant(TENANT)
        log_request(scope("/api/v1/streams/x", b"limit=50"), 200, plain_path=True)
        writer.access(json.loads(lines.getvalue())["msg"])
    assert stream.getvalue() == b""  # nothing written by the caller
    writer.flush()
    ours, theirs = json.loads(stream.getvalue()), json.loads(lines.getvalue())
    assert list(ours) == list(theirs)
    assert {k: v for k, v in ours.items() if k != "ts"} == {
        k: v for k, v in theirs.items() if k != "ts"
    }
    assert ours["ts"][:19] == theirs["ts"][:19] and ours["ts"].endswith("+00:00")
    writer.close()


def test_the_access_line_is_written_off_the_loop_and_still_scrubbed() -> None:
    """Installed, the writer takes every access line: the caller only queues it (a stalled
    stream never blocks the event loop), and the line holds no secret of the query."""
    saved = ACCESS.handlers[:], ACCESS.propagate, ACCESS.level
    ACCESS.setLevel(logging.INFO)
    writer = write_off_loop("tests")
    stream = io.BytesIO()
    writer.stream = stream
    try:
        with request_context("abc123"):
            log_request(scope("/ws/x", f"token={JWT}".encode()), 200)
        assert stream.getvalue() == b""
        writer.flush()
        line = json.loads(stream.getvalue())
        assert JWT not in stream.getvalue().decode()
        assert line["msg"] == '127.0.0.1:5123 - "GET /ws/x?token=*** HTTP/1.1" 200'
        assert (line["logger"], line["request_id"]) == ("lookout.access", "abc123")
    finally:
        writer.close()
        ACCESS.handlers[:], ACCESS.propagate = saved[0], saved[1]
        ACCESS.setLevel(saved[2])


def test_lines_past_the_bound_are_dropped_and_counted_never_waited_for() -> None:
    writer, stream = off_loop()
    writer.max_pending = 3
    for _ in range(5):
        writer.access("x")
    writer.flush()
    written = stream.getvalue().decode().splitlines()
    assert len(written) == 4
    assert json.loads(written[-1])["msg"] == "2 access lines dropped: log stream stalled"
    writer.close()
