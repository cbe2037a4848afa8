"""The aggregator's HTTP face: /healthz, /readyz, /metrics. The lifespan runs the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from lookout_shared.http import (
    Check,
    add_ops_routes,
    install_problem_handlers,
    readiness_checks,
)

from lookout_count_aggregator.bootstrap import Aggregator, bootstrap
from lookout_count_aggregator.settings import AggregatorSettings


def create_app(settings: AggregatorSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        aggregator = await bootstrap(settings)
        app.state.aggregator = aggregator
        await aggregator.start()
        try:
            yield
        finally:
            await aggregator.stop()

    app = FastAPI(title="lookout count-aggregator", lifespan=lifespan)
    install_problem_handlers(app)

    def checks() -> Mapping[str, Check]:
        aggregator: Aggregator = app.state.aggregator
        return readiness_checks(redis=aggregator.redis.ping, rabbitmq=lambda: aggregator.broker)

    add_ops_routes(app, checks)
    return app
