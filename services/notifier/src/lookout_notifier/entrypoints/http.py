"""The ASGI app: connections open in the lifespan, routes read them from app.state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from lookout_shared.broker import Broker
from lookout_shared.db import create_pool
from lookout_shared.http import Check, add_ops_routes, install_problem_handlers
from lookout_shared.redis import create_redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from lookout_notifier.adapters import mqtt_bridge
from lookout_notifier.adapters.redis_history import RedisRoomHistory
from lookout_notifier.adapters.redis_slots import RedisConnectionSlots
from lookout_notifier.bootstrap import Notifier, bootstrap, running, running_webhooks
from lookout_notifier.entrypoints import consumer, sse
from lookout_notifier.entrypoints.ws import GATEWAY, Gateway, NotifierWebSocket
from lookout_notifier.settings import NotifierSettings


def create_app(settings: NotifierSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            redis = create_redis(settings.redis_url.get_secret_value())
            # A restarted Redis leaves every pooled connection stale: a command retries on a
            # fresh one rather than failing a subscribe or an event. Safe, as each of the
            # notifier's commands is idempotent (events by their seen keys, slots by id).
            redis.set_retry(Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
            stack.push_async_callback(redis.aclose)
            broker = Broker(settings.amqp_url.get_secret_value(), producer=settings.service_name)
            stack.push_async_callback(broker.close)
            await broker.connect()
            history = RedisRoomHistory(
                redis, settings.redis_prefix, settings.history_size, settings.history_ttl_seconds
            )
            slots = RedisConnectionSlots(
                redis, settings.redis_prefix, settings.connection_lease_seconds
            )
            notifier = bootstrap(settings, history, slots)
            app.state.notifier, app.state.broker = notifier, broker
            await consumer.start_consumer(broker, notifier, settings.event_prefetch)
            if settings.webhooks_enabled or settings.mqtt_url is not None:
                # Webhooks and snapshots live in the api's Postgres.
                dsn = settings.database_url.get_secret_value()
                pool = await create_pool(dsn, 1, settings.db_pool_max)
                stack.push_async_callback(pool.close)
                if settings.webhooks_enabled:
                    await stack.enter_async_context(running_webhooks(settings, broker, pool))
                if settings.mqtt_url is not None:
                    await stack.enter_async_context(mqtt_bridge.running(settings, broker, pool))
            await stack.enter_async_context(running(notifier))
            gateway = Gateway(notifier)
            await stack.enter_async_context(_background(gateway.heartbeat_forever()))
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
    install_problem_handlers(app)
    app.include_router(sse.router)
    add_ops_routes(app, lambda: _checks(app))
    return app


def _checks(app: FastAPI) -> Mapping[str, Check]:
    notifier: Notifier = app.state.notifier
    broker: Broker = app.state.broker

    async def broker_check() -> None:
        if not broker.is_connected:
            raise ConnectionError("broker connection is closed")

    return {"broker": broker_check, "redis": notifier.history.ping}


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


@asynccontextmanager
async def _background(work: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
