"""HTTP pieces every service shares: health, readiness, metrics, request ids, and RFC 7807
problems."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookout_shared.logs import request_context
from lookout_shared.metrics import record_http
from lookout_shared.telemetry import instrument_app

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]
PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept only if it is a plain token: it ends up in every log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Problem(Exception):
    """An error answered as ``application/problem+json`` (RFC 7807)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.type = status, title, detail, type_
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(
    status: int, title: str, detail: str, *, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        response = problem_response(
            exc.status, exc.title, exc.detail, instance=request.url.path, type=exc.type, **exc.extra
        )
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return problem_response(
            422, "Invalid request", detail, instance=request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = problem_response(
            exc.status_code, _title(exc.status_code), str(exc.detail), instance=request.url.path
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def add_ops_routes(
    app: FastAPI,
    checks: Callable[[], Mapping[str, Check]],
    *,
    check_timeout: float = 2.0,
    failures: int = 3,
    front: bool = False,
) -> None:
    """``/healthz`` (the process answers), ``/readyz`` (every dependency answers, see
    :class:`Readiness`) and ``/metrics`` (Prometheus); also request ids, request metrics and
    (if configured) traces for every route of ``app``. ``checks`` is called per request so
    it can read app state. ``front``: the app's own outermost layer makes the request ids
    and metrics (the api's, which answers cache hits there)."""
    if not front:
        record_http(app)
        app.add_middleware(RequestId)  # outside record_http: its lines carry the id too
    instrument_app(app)
    readiness = Readiness(check_timeout, failures)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        states = await readiness.probe(checks())
        ready = all(state != "unavailable" for state in states.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": states},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestId:
    """Takes ``X-Request-ID`` from the request when it is a sane token, or makes one; binds it
    to the log context of the request (and of a WebSocket's whole life) and answers it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with request_context(request_id):
            await self.app(scope, receive, send_with_id)


def request_id_of(scope: Scope) -> str:
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            text = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return new_request_id()


# A made request id: this process's random 64-bit prefix and a counter, 32 hex characters
# like a UUID's; unique across processes, and a counter step instead of a urandom call per
# request. (An id names a request in logs; it is no secret.)
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker makes its own ids


class Readiness:
    """Which dependencies answer, with hysteresis. A check that fails or takes longer than
    ``timeout`` is one failure; a dependency that has answered before is reported
    ``unavailable`` only after ``failures`` failed checks in a row, and ``failing`` (still
    ready) until then, so one slow answer under load does not take the process out of its
    load balancer, while a sustained outage does. One that has never answered is
    ``unavailable`` at once: a process is not ready before each dependency has answered."""

    def __init__(self, timeout: float = 2.0, failures: int = 3) -> None:
        self.timeout = timeout
        self.failures = max(1, failures)
        self._in_a_row: dict[str, int] = {}
        self._answered: set[str] = set()

    async def probe(self, checks: Mapping[str, Check]) -> dict[str, str]:
        """``ok``, ``failing`` or ``unavailable`` for each check."""
        states = {}
        for name, ok in (await run_checks(checks, self.timeout)).items():
            if ok:
                self._in_a_row[name] = 0
                self._answered.add(name)
                states[name] = "ok"
                continue
            self._in_a_row[name] = failed = self._in_a_row.get(name, 0) + 1
            grace = name in self._answered and failed < self.failures
            states[name] = "failing" if grace else "unavailable"
        return states


class Connected(Protocol):
    @property
    def is_connected(self) -> bool: ...


def readiness_checks(
    *,
    postgres: Check | None = None,
    redis: Check | None = None,
    rabbitmq: Callable[[], Connected | None] | None = None,
) -> dict[str, Check]:
    """A service's ``/readyz`` checks, under the names every service reports them by.
    ``rabbitmq`` gives the broker (None before it is built): ready while it is connected."""
    checks: dict[str, Check] = {}
    if postgres is not None:
        checks["postgres"] = postgres
    if redis is not None:
        checks["redis"] = redis
    if rabbitmq is not None:
        broker_of = rabbitmq

        async def connected() -> None:
            broker = broker_of()
            if broker is None or not broker.is_connected:
                raise ConnectionError("not connected to RabbitMQ")

        checks["rabbitmq"] = connected
    return checks


async def run_checks(checks: Mapping[str, Check], seconds: float = 2.0) -> dict[str, bool]:
    async def one(check: Check) -> bool:
        try:
            await asyncio.wait_for(check(), seconds)
            return True
        except Exception as exc:
            log.warning("readiness check failed: %r", exc)
            return False

    names = list(checks)
    outcomes = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, outcomes, strict=True))
