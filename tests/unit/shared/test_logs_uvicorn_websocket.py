"""A token in uvicorn's WebSocket log line never reaches the log, and the line stays JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from lookout_shared.logs import configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # A uvicorn server started earlier in the run (log_level="warning") leaves its level set.
    uvicorn_error = logging.getLogger("uvicorn.error")
    saved_uvicorn = uvicorn_error.level
    uvicorn_error.setLevel(logging.NOTSET)
    configure_logging("notifier", "INFO")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    uvicorn_error.setLevel(saved_uvicorn)


def test_uvicorn_websocket_line_is_scrubbed_and_valid_json(captured: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws?token=eyJhbGciOi.secret.sig&x=1"
    )
    entry = json.loads(captured.getvalue().splitlines()[-1])
    assert entry["msg"] == '127.0.0.1:5000 - "WebSocket /ws?token=***&x=1" [accepted]'
    assert "secret" not in captured.getvalue()
