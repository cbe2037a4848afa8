"""JSON log lines: one object each, secrets scrubbed, noisy client-library lines cut to one."""

from __future__ import annotations

import io
import json
import logging

import pytest
from lookout_shared.logs import JsonFormatter, scrub


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /ws?token=eyJhbGciOi.abc.def HTTP/1.1", "eyJhbGciOi"),
        ("opening rtsp://admin:hunter2@cam/live", "hunter2"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ('{"password": "hunter2"}', "hunter2"),
        ("password=hunter2&x=1", "hunter2"),
    ],
)
def test_scrub_removes_secrets(text: str, secret: str) -> None:
    assert secret not in scrub(text)


def test_formatter_writes_one_json_object_with_extras() -> None:
    record = logging.makeLogRecord(
        {"msg": "probe %s", "args": ("rtsp://u:p4ss@cam/x",), "levelname": "INFO", "queue": "q"}
    )
    line = JsonFormatter("api").format(record)
    entry = json.loads(line)
    assert entry["service"] == "api" and entry["queue"] == "q"
    assert "p4ss" not in line


def test_asyncpg_pool_retries_log_one_line_without_a_traceback() -> None:
    from lookout_shared.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("api", "INFO")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError:
            logging.getLogger("asyncpg.pool").warning(
                "Failed to restore the pool connection floor; retrying", exc_info=True
            )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert "exc" not in entry
    assert entry["msg"] == (
        "Failed to restore the pool connection floor; retrying: "
        "ConnectionRefusedError(111, 'Connect call failed')"
    )
