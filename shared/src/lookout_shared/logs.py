"""JSON logs on stderr, one object a line, with secrets scrubbed before they are written.

Scrubbing happens in the formatter, so it covers every logger (ours, uvicorn's, the client
libraries'): URL credentials, ``token=`` query values, bearer tokens and password fields.
Each value is scrubbed before it is encoded, so a line is always valid JSON.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from lookout_shared.telemetry import current_ids

_SECRETS = [
    (re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@", re.I), r"\g<keep>***:***@"),
    (
        re.compile(r"(?P<keep>[?&](?:token|access_token|api_key|key)=)[^&\s\"']+", re.I),
        r"\g<keep>***",
    ),
    (re.compile(r"(?P<keep>bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\g<keep>***"),
    (re.compile(r"(?P<keep>\"?password\"?\s*[:=]\s*\"?)[^\"\s,}&]+", re.I), r"\g<keep>***"),
]
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                plain = isinstance(value, int | float | bool | None)
                entry[key] = value if plain else scrub(str(value))
        ids = current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiormq logs every reconnect attempt with a traceback; one line is enough.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
