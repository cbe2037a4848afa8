"""JSON logs on stderr, one object a line, with secrets scrubbed before they are written.

Scrubbing happens in the formatter, so it covers every logger (ours, uvicorn's, the client
libraries'): URL credentials, the values of secret URL parameters (``token=``, ``key=``...:
the same rule as ``stream_urls.mask_credentials``), ``Authorization`` values, access
tokens (JWTs), API keys (``lk_...``) and password, secret and token fields of JSON, Python
reprs and form bodies. Each value is scrubbed before it is encoded, so a line is always
valid JSON.

Each line carries the trace and span id of the current span, and the request id and tenant
bound to the current context (by the HTTP middleware, the api's authentication and the
message consumers), so the lines of one request or one message can be found together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from lookout_shared.stream_urls import MASK, mask_secret_params
from lookout_shared.trace_ids import current_ids

_SENSITIVE_NAME = r"[\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*"
_SECRETS = [
    # scheme://user:pass@host and scheme://token@host: everything up to the last @ of the
    # authority (a password may itself contain @).
    (
        re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://)[^/\s\"'<>]*@", re.I),
        rf"\g<keep>{MASK}:{MASK}@",  # as stream_urls.mask_credentials shows a URL
    ),
    # Authorization: Bearer/Basic/<anything>, as a header line, a tuple or a dict entry.
    (re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\g<keep>***"),
    (
        re.compile(r"(?P<keep>authorization[\"']?\s*[:=,]\s*(?:b?[\"'])?)(?!\*)[^\s\"',}]+", re.I),
        r"\g<keep>***",
    ),
    # Password, secret and token fields: quoted values ("a b", 'x'), form and query values
    # (up to the next &), and bare values after a colon (up to , or }).
    (
        re.compile(
            rf"(?P<keep>(?P<q>[\"']?){_SENSITIVE_NAME}(?P=q)\s*[:=]\s*)"
            r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')",
            re.I,
        ),
        r"\g<keep>***",
    ),
    (re.compile(rf"(?P<keep>{_SENSITIVE_NAME}=)(?![\"'*])[^&\s]+", re.I), r"\g<keep>***"),
    (
        re.compile(rf"(?P<keep>{_SENSITIVE_NAME}[\"']?\s*:\s*)(?![\"'*])[^\s,}}&]+", re.I),
        r"\g<keep>***",
    ),
    # JWTs and API keys wherever they appear (a frame, an exception's text).
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "***"),
    (re.compile(r"\blk_[A-Za-z0-9_-]{16,}"), "lk_***"),
]
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_request_id: ContextVar[str | None] = ContextVar("lookout_request_id", default=None)
_tenant_id: ContextVar[str | None] = ContextVar("lookout_tenant_id", default=None)


def scrub(text: str) -> str:
    text = mask_secret_params(text)
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Lines logged inside carry ``request_id`` (scrubbed once here, not on every line: a
    plain alphanumeric id, such as the ones made here, cannot hold a secret); the tenant
    starts unknown."""
    loggable = request_id if request_id.isalnum() else scrub(request_id)
    rid, tenant = _request_id.set(loggable), _tenant_id.set(None)
    try:
        yield
    finally:
        _tenant_id.reset(tenant)
        _request_id.reset(rid)


def bind_tenant(tenant_id: uuid.UUID | str | None) -> None:
    """Name the tenant of the rest of the current request or task (its log lines)."""
    _tenant_id.set(None if tenant_id is None else str(tenant_id))


@contextlib.contextmanager
def tenant_context(tenant_id: uuid.UUID | str | None) -> Iterator[None]:
    token = _tenant_id.set(None if tenant_id is None else str(tenant_id))
    try:
        yield
    finally:
        _tenant_id.reset(token)


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
            # A line whose writer scrubbed what can hold a secret says so (the access log).
            "msg": record.getMessage() if _prescrubbed(record) else scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                plain = isinstance(value, int | float | bool | None)
                entry[key] = value if plain else scrub(str(value))
        entry.update(context_fields())
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry)


def context_fields() -> list[tuple[str, str]]:
    """The fields of the current context every line carries: trace and span id, request id
    (scrubbed by request_context) and tenant, those that are set, in that order."""
    fields: list[tuple[str, str]] = []
    ids = current_ids()
    if ids is not None:
        fields += (("trace_id", ids[0]), ("span_id", ids[1]))
    request_id, tenant_id = _request_id.get(), _tenant_id.get()
    if request_id is not None:
        fields.append(("request_id", request_id))
    if tenant_id is not None:
        fields.append(("tenant_id", tenant_id))
    return fields


PRESCRUBBED = "_lookout_scrubbed"  # a record attribute: its message needs no scrub()


def _prescrubbed(record: logging.LogRecord) -> bool:
    return bool(record.__dict__.get(PRESCRUBBED))


class OneLine(logging.Filter):
    """Folds a record's traceback into its line: the exception's repr after the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = None
            record.exc_info = None
        return True


_ONE_LINE = OneLine()


def configure_logging(service: str, level: str = "INFO") -> None:
    # The record fields a line never shows are not collected (the logging docs'
    # "Optimization" section): no stack walk to find the caller, no thread or process
    # lookups, on every line, the access line included.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    # While Postgres is down, asyncpg's pool logs each attempt to restore its connection
    # floor (backing off to a minute) with a traceback; the exception's repr says enough.
    logging.getLogger("asyncpg.pool").addFilter(_ONE_LINE)
