"""The worker as an ASGI app: /healthz, /readyz and /metrics; the runtime lives in its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI
from lookout_shared.http import (
    Check,
    add_ops_routes,
    install_problem_handlers,
    readiness_checks,
)

from lookout_snapshot_worker.bootstrap import Overrides, Runtime
from lookout_snapshot_worker.settings import WorkerSettings


def create_app(settings: WorkerSettings, overrides: Overrides | None = None) -> FastAPI:
    """Consumers and the outbox relay start with the app and stop with it (uvicorn turns
    SIGTERM into the lifespan's shutdown)."""
    runtime = Runtime(settings, overrides)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="lookout snapshot worker", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)

    def checks() -> Mapping[str, Check]:
        return readiness_checks(
            postgres=lambda: _ping_postgres(runtime), rabbitmq=lambda: runtime.broker
        )

    add_ops_routes(app, checks)
    return app


async def _ping_postgres(runtime: Runtime) -> None:
    if runtime.pool is None:
        raise ConnectionError("not connected to Postgres yet")
    await runtime.pool.fetchval("SELECT 1")
