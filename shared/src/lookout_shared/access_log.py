"""The access log: one line per HTTP request, with uvicorn's message (``client - "METHOD
path?query HTTP/1.1" status``) and fields, at the cost of a formatted line. Its logger is
``lookout.access``: uvicorn silences its own ``uvicorn.access`` when told not to write it.
Written when the response starts, from inside the request's context, so the line names
the tenant and the trace as uvicorn's did.

uvicorn's own line goes through the JSON formatter's full scrub (a dozen regular
expressions) on every request. Here only what can hold a secret is scrubbed, where it is
written: the query string (``?token=``), and the path unless the caller vouches that it
holds only ids (the read cache's paths). The line is then marked so the formatter does not
scrub it again.

A service that answers many requests installs :class:`OffLoopLines` (:func:`write_off_loop`):
the line is still formatted in the request's context (its ids are context variables), as
the JSON formatter would write it, but written by a thread of its own, in batches, so the
event loop never waits on the stream (a slow pipe or disk) and pays no write per request.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from logging import INFO
from typing import BinaryIO
from urllib.parse import quote

from starlette.types import Scope

from lookout_shared.logs import PRESCRUBBED, JsonFormatter, context_fields, scrub

ACCESS = logging.getLogger("lookout.access")
_EXTRA = {PRESCRUBBED: True}
# Scrubbed query strings: hot paths repeat theirs (``limit=50``), and scrub() costs a dozen
# regular expressions. Short ones only, and a bounded number.
_QUERIES: dict[str, str] = {}
_QUERIES_MAX = 1024
_QUERY_MAX_CHARS = 256


def _scrubbed_query(query: str) -> str:
    known = _QUERIES.get(query)
    if known is not None:
        return known
    scrubbed = scrub(query)
    if len(query) <= _QUERY_MAX_CHARS:
        if len(_QUERIES) >= _QUERIES_MAX:
            _QUERIES.clear()
        _QUERIES[query] = scrubbed
    return scrubbed


def log_request(scope: Scope, status: int, *, plain_path: bool = False) -> None:
    """Write the access line of ``scope``'s request, answered ``status``. ``plain_path``:
    the path is known to hold nothing but fixed words and ids."""
    if not ACCESS.isEnabledFor(INFO):
        return
    path = scope.get("root_path", "") + scope["path"]
    if not plain_path:  # a plain path has nothing to quote either
        path = scrub(quote(path))
    query = scope.get("query_string")
    if query:
        path = f"{path}?{_scrubbed_query(query.decode('latin-1'))}"
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    message = (
        f'{address} - "{scope["method"]} {path} HTTP/{scope.get("http_version", "1.1")}" {status}'
    )
    handlers = ACCESS.handlers
    if _WRITER and len(handlers) == 1 and handlers[0] is _WRITER[0]:
        _WRITER[0].access(message)  # no log record: the line is all it would make
    else:
        ACCESS.info("%s", message, extra=_EXTRA)


class OffLoopLines(logging.Handler):
    """Formats each record where it is logged and leaves the writing to a thread of its own,
    which writes what has gathered every ``interval`` seconds in one call. Lines past
    ``max_pending`` (the stream stalled) are dropped and counted, never waited for; the
    count is written once the stream takes lines again. Whatever is pending is written at
    exit."""

    def __init__(
        self,
        service: str,
        stream: BinaryIO,
        *,
        interval: float = 0.05,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter(service))
        self.stream = stream
        self.interval = interval
        self.max_pending = max_pending
        self.dropped = 0
        self._lines: deque[str] = deque()
        # The access line's fixed middle, as the JSON formatter writes it.
        self._head = (
            f', "level": "info", "service": {json.dumps(service)}, '
            f'"logger": {json.dumps(ACCESS.name)}, "msg": '
        )
        self._second = -1
        self._stamp = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-lines", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def access(self, message: str) -> None:
        """Queue the access line of ``message`` (scrubbed by its writer): the line the JSON
        formatter would make of an INFO record of it on ``lookout.access``, built without
        one, with the timestamp's seconds formatted once per second."""
        if len(self._lines) >= self.max_pending:
            self.dropped += 1
            return
        now = time.time()
        whole = int(now)
        if whole != self._second:
            self._second = whole
            self._stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        tail = "".join([f', "{k}": {json.dumps(v)}' for k, v in context_fields()])
        self._lines.append(
            f'{{"ts": "{self._stamp}.{int((now - whole) * 1000):03d}+00:00"{self._head}'
            f"{json.dumps(message)}{tail}}}"
        )

    def handle(self, record: logging.LogRecord) -> bool:
        # No lock: deque.append is atomic, and this handler has no filters.
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._lines) >= self.max_pending:
            self.dropped += 1
            return
        self._lines.append(self.format(record))

    def flush(self) -> None:
        lines = self._lines
        batch = [lines.popleft() for _ in range(len(lines))]
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            batch.append(json.dumps({"msg": f"{dropped} access lines dropped: log stream stalled"}))
        if batch:
            self.stream.write(("\n".join(batch) + "\n").encode("utf-8", "replace"))
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the stream is broken: say so once, keep the process up
                self.handleError(logging.makeLogRecord({"msg": "access lines"}))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError, ValueError):  # the stream closed first
            self.flush()
        super().close()


_WRITER: list[OffLoopLines] = []  # the handler write_off_loop installed


def write_off_loop(service: str) -> OffLoopLines:
    """Write ``lookout.access`` lines off the event loop, to stderr like every other line."""
    handler = OffLoopLines(service, sys.stderr.buffer)
    ACCESS.handlers[:] = [handler]
    ACCESS.propagate = False
    _WRITER[:] = [handler]
    return handler
