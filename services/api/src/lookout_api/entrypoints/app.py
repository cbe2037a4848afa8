"""The FastAPI application: routes, error mapping, and the lifespan that owns connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from lookout_shared.http import add_ops_routes, install_problem_handlers, problem_response

from lookout_api import bootstrap
from lookout_api.domain.errors import DomainError, Unauthorized
from lookout_api.entrypoints.routes import auth, counts, snapshots, streams
from lookout_api.settings import ApiSettings


def create_app(settings: ApiSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps = await bootstrap.build(settings)
        assert deps.broker is not None and deps.relay is not None
        app.state.deps = deps
        # The api answers while RabbitMQ is down: writes wait in the outbox, and the robust
        # connection (and so the relay) catches up once the broker is back.
        broker_task = asyncio.create_task(deps.broker.connect_with_retry())
        relay_task = asyncio.create_task(deps.relay.run())
        try:
            yield
        finally:
            for task in (relay_task, broker_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await bootstrap.close(deps)

    app = FastAPI(title="Lookout API", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> Response:
        response = problem_response(exc.status, exc.title, exc.detail, instance=request.url.path)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    for module in (auth, streams, snapshots, counts):
        app.include_router(module.router)

    add_ops_routes(app, lambda: bootstrap.readiness_checks(app.state.deps))
    return app
