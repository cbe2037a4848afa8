"""How errors become RFC 7807 problems: the domain's own, a value Postgres refused (422),
and Postgres unavailable (503 with Retry-After, logged once per outage)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from lookout_shared.db import DatabaseUnreachable
from lookout_shared.http import problem_response

from lookout_api.domain.errors import (
    DomainError,
    ItemErrors,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

# What a client waits before trying again while Postgres is unavailable.
RETRY_AFTER_SECONDS = 5
# Errors that say Postgres cannot be used right now, not that the request was wrong:
# unreachable, the connection lost, the server starting or shutting down, out of
# connection slots, a pool acquire or query that timed out. InterfaceError only when it
# is about a closed connection or pool (the others are programming errors: a 500).
UNAVAILABLE = (
    DatabaseUnreachable,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    TimeoutError,
)


def closed_connection(exc: Exception) -> bool:
    return not isinstance(exc, asyncpg.InterfaceError) or "is clos" in str(exc)


class Outage:
    """Postgres as the requests see it. The first failure logs one line and starts a probe
    that logs one more when Postgres answers again, so an outage costs two log lines, not a
    traceback per request. Nothing is refused early: each request still tries Postgres (the
    pool reconnects by itself), so service resumes with the first request after recovery."""

    def __init__(self, probe: Callable[[], Awaitable[object]], interval: float = 1.0) -> None:
        self._probe = probe
        self._interval = interval
        self._watch: asyncio.Task[None] | None = None
        self._since = 0.0
        self.refused = 0  # requests answered 503 during the current outage

    @property
    def ongoing(self) -> bool:
        return self._watch is not None

    def failed(self, exc: Exception) -> None:
        self.refused += 1
        if self._watch is not None:
            return
        log.warning("Postgres unavailable, answering 503 until it is back: %s", _reason(exc))
        self._since = time.monotonic()
        self._watch = asyncio.create_task(self._until_back())

    async def _until_back(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                async with asyncio.timeout(max(self._interval, 2.0)):
                    await self._probe()
            except Exception:  # noqa: S112 - still down; the start was logged once
                continue
            log.warning(
                "Postgres answers again after %.1fs; %d request(s) were answered 503",
                time.monotonic() - self._since,
                self.refused,
            )
            self.refused = 0
            self._watch = None
            return

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None


def _reason(exc: BaseException) -> str:
    """The exception and its cause in one line (the cause says refused, reset, ...)."""
    cause = exc.__cause__
    return f"{exc!r}" + (f" (from {cause!r})" if cause is not None else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> Response:
        extra = {"errors": exc.errors} if isinstance(exc, ItemErrors) else {}
        response = problem_response(
            exc.status, exc.title, exc.detail, instance=request.url.path, **extra
        )
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(asyncpg.DataError)
    async def _data_error(request: Request, exc: asyncpg.DataError) -> Response:
        # A backstop: request validation refuses what Postgres cannot take (domain/text.py,
        # the cursor decoder). A value that still gets this far is the client's, so answer
        # 422; the line names the SQLSTATE so the missing validation can be added.
        log.warning("Postgres refused a value (SQLSTATE %s): %s", exc.sqlstate, exc)
        return problem_response(
            422,
            "Invalid request",
            "a value of the request cannot be stored (for example a NUL character or an "
            "out-of-range date)",
            instance=request.url.path,
        )

    async def _unavailable(request: Request, exc: Exception) -> Response:
        if not closed_connection(exc):
            raise exc
        outage: Outage = request.app.state.postgres_outage
        outage.failed(exc)
        response = problem_response(
            503,
            "Service unavailable",
            "the database is unavailable; try again shortly",
            instance=request.url.path,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)
