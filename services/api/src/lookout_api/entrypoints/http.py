"""The FastAPI application: routes, error mapping, middleware, and the lifespan that owns
connections."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from lookout_shared.http import add_ops_routes, install_problem_handlers
from starlette.middleware.gzip import GZipMiddleware

from lookout_api import bootstrap
from lookout_api.entrypoints import openapi, ui
from lookout_api.entrypoints.deps import storable_query
from lookout_api.entrypoints.errors import Outage, install_error_handlers
from lookout_api.entrypoints.front import LookoutApi
from lookout_api.entrypoints.middleware import BodySizeLimit
from lookout_api.entrypoints.routes import (
    api_keys,
    audit,
    counts,
    dashboard,
    images,
    quotas,
    snapshots,
    stream_list,
    streams,
    streams_bulk,
    tenants,
    tokens,
    users,
    webhooks,
)
from lookout_api.settings import ApiSettings

GZIP_MIN_BYTES = 1024


def create_app(settings: ApiSettings) -> FastAPI:
    runtime = bootstrap.Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps = await runtime.start()
        app.state.deps = deps
        app.state.postgres_outage = Outage(lambda: deps.pool.fetchval("SELECT 1"))
        # Everything made so far (the app, its routes and models, the libraries) lives as
        # long as the process: out of the collector's sight, a full collection under load
        # scans only what requests make, not hundreds of thousands of objects that never die.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.postgres_outage.close()
            await runtime.stop()

    app = LookoutApi(
        title="Lookout API",
        version="0.2.0",
        lifespan=lifespan,
        description="Streams, snapshots and counts per tenant. Errors are RFC 7807 problems.",
        dependencies=[Depends(storable_query)],
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    install_problem_handlers(app)
    install_error_handlers(app)

    # stream_list before streams: "" and "/{id}" do not clash, but keep the list first.
    for module in (
        tokens,
        api_keys,
        tenants,
        users,
        stream_list,
        streams,
        streams_bulk,
        snapshots,
        images,
        counts,
        audit,
        quotas,
        dashboard,
        webhooks,
    ):
        app.include_router(module.router)
    app.include_router(ui.router)  # the operator page at /ui

    # Innermost first. Cache hits are answered in front of all of these (front.py; the cache
    # keeps the encoded bytes, gzipped or not).
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    add_ops_routes(
        app,
        lambda: bootstrap.readiness_checks(app.state.deps),
        check_timeout=settings.readiness_timeout_seconds,
        failures=settings.readiness_failures,
        front=True,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
