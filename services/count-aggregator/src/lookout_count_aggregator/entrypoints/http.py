"""The aggregator's HTTP face: /healthz, /readyz, /metrics. The lifespan runs the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from lookout_shared.http import Check, add_ops_routes, install_problem_handlers

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

        async def redis() -> object:
            return await aggregator.redis.ping()

        async def broker() -> object:
            if not aggregator.broker.is_connected:
                raise ConnectionError("broker connection is closed")
            return True

        return {"redis": redis, "broker": broker}

    add_ops_routes(app, checks)
    return app
