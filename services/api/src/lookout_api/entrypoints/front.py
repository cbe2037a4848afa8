"""The api's outermost layer: request ids, request metrics and the access log of every
request, done inline, cheaply, around the read cache (cached_reads.py). Both wrap the whole
FastAPI application (:class:`LookoutApi`), so a cache hit passes through nothing else: no
Starlette middleware, no tracing middleware (a hit makes its own span, cached_reads.py), no
routing, no dependency. A profile of hits put half of their time in those layers.

It replaces the shared ``RequestId`` and request-metrics middleware for the api (same
header, same metric names and labels) and uvicorn's access line (lookout_shared.access_log:
same message and fields).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from lookout_shared.access_log import log_request
from lookout_shared.http import REQUEST_ID_HEADER, request_id_of
from lookout_shared.logs import request_context
from lookout_shared.metrics import HttpMetrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookout_api.entrypoints.cached_reads import CachedReads, kind_of
from lookout_api.entrypoints.latest_jpgs import LATEST_JPG, LatestJpgs
from lookout_api.handlers.auth import KnownCallers

_HEADER = REQUEST_ID_HEADER.lower().encode()


class Front:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = HttpMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        # The paths of the front's own reads hold only fixed words and ids.
        plain = kind_of(scope) is not None or LATEST_JPG.fullmatch(scope["path"]) is not None
        header = (_HEADER, request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
                log_request(scope, status, plain_path=plain)
            await send(message)

        with request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # The router (or the cache, for a hit) names the route in the shared scope.
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


class LookoutApi(FastAPI):
    """FastAPI behind :class:`Front`, :class:`CachedReads` and :class:`LatestJpgs`: still the one application
    object (state, routes, lifespan), so tests and uvicorn serve it as any FastAPI app."""

    _front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._front is None:
            callers = KnownCallers()
            jpgs = LatestJpgs(super().__call__, self, callers)
            self._front = Front(CachedReads(jpgs, self, callers))
        await self._front(scope, receive, send)
