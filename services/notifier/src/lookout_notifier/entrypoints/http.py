"""The ASGI app: the runtime starts and stops in its lifespan, routes read the notifier
from app.state."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from lookout_shared.http import (
    Check,
    add_ops_routes,
    install_problem_handlers,
    readiness_checks,
)

from lookout_notifier.bootstrap import Runtime, background
from lookout_notifier.entrypoints import consumer, sse
from lookout_notifier.entrypoints.ws import GATEWAY, Gateway, NotifierWebSocket
from lookout_notifier.settings import NotifierSettings


def create_app(settings: NotifierSettings) -> FastAPI:
    runtime = Runtime(settings, consumer.start_consumer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            notifier = await runtime.start()
            stack.push_async_callback(runtime.stop)
            app.state.notifier = notifier
            gateway = Gateway(notifier)
            await stack.enter_async_context(background(gateway.heartbeat_forever()))
            stack.callback(notifier.close_all)  # runs first on shutdown
            # What start-up built (modules, the app, clients: ~10^5 objects) lives as long as
            # the process: out of the collector's sight, a full collection walks only what
            # came after (connections, rooms) and no longer pauses fan-out for ~0.1 s. The
            # garbage of start-up is collected first, or it would be kept for good.
            gc.collect()
            gc.freeze()
            # uvicorn hands this state to the /ws protocol (see server_config).
            yield {GATEWAY: gateway}

    app = FastAPI(title="lookout-notifier", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(sse.router)
    add_ops_routes(app, lambda: _checks(runtime))
    return app


def _checks(runtime: Runtime) -> Mapping[str, Check]:
    async def redis_check() -> object:
        if runtime.notifier is None:
            raise ConnectionError("not connected to Redis yet")
        return await runtime.notifier.history.ping()

    return readiness_checks(redis=redis_check, rabbitmq=lambda: runtime.broker)


def server_config(app: FastAPI, settings: NotifierSettings, **overrides: object) -> uvicorn.Config:
    """uvicorn's settings for this app, shared by main and the integration tests."""
    options: dict[str, object] = {
        "host": settings.bind_host,
        "port": settings.notifier_port,
        # /ws on the same port, served by a protocol object per connection rather than an
        # ASGI task (see entrypoints.ws); uvicorn hands it the upgrade requests.
        "ws": NotifierWebSocket,
        # Keep configure_logging's handlers: the access log then goes through the scrubber
        # and never shows a ?token= value.
        "log_config": None,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        **overrides,
    }
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]
