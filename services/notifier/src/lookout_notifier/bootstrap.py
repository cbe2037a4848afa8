"""The one place that wires the notifier together; tests pass in-memory twins here.

``Runtime`` builds every adapter (Redis, RabbitMQ, Postgres when webhooks or the MQTT
bridge need it), starts the consumers and background work, and stops them again in reverse
order; entrypoints/http.py serves it as an ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from lookout_shared import topology
from lookout_shared.addresses import EgressPolicy
from lookout_shared.broker import Broker, Consumer
from lookout_shared.db import create_pool
from lookout_shared.envelope import Envelope
from lookout_shared.notified_cache import TtlCache
from lookout_shared.redis import create_redis
from lookout_shared.sealed import sealer_for
from lookout_shared.tokens import TokenCodec
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from lookout_notifier import handlers
from lookout_notifier.adapters import mqtt_bridge
from lookout_notifier.adapters.redis_history import RedisRoomHistory
from lookout_notifier.adapters.redis_slots import RedisConnectionSlots
from lookout_notifier.adapters.webhook_sender import Sender, client
from lookout_notifier.adapters.webhooks_db import WebhooksDb, webhook_changes
from lookout_notifier.domain.hub import Hub
from lookout_notifier.handlers.webhooks import Dispatcher
from lookout_notifier.ports import ConnectionSlots, Deps, RoomHistory
from lookout_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

GOING_AWAY = 1001


@dataclass
class Notifier:
    settings: NotifierSettings
    deps: Deps
    slots: ConnectionSlots
    codec: TokenCodec
    # The broker hands deliveries over as concurrent tasks; a FIFO lock keeps each room's
    # frames in delivery order.
    _event_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def hub(self) -> Hub:
        return self.deps.hub

    @property
    def history(self) -> RoomHistory:
        return self.deps.history

    async def on_event(self, envelope: Envelope) -> None:
        async with self._event_lock:
            await handlers.handle_event(envelope, self.deps)

    async def renew_slots_forever(self) -> None:
        """Renew this instance's connection slots well before their leases end. Periodic work
        for the life of the process (a failed round is just the next one), not a retry loop."""
        while True:
            await asyncio.sleep(self.settings.connection_lease_seconds / 3)
            held = [(c.principal.user_id, c.id) for c in self.hub.connections]
            try:
                await self.slots.renew(held)
            except Exception:  # Redis away: try again next round; slots lapse at worst
                log.warning("could not renew connection slots", exc_info=True)

    def close_all(self) -> None:
        for conn in list(self.hub.connections):
            conn.close(GOING_AWAY, "server shutting down")


def bootstrap(settings: NotifierSettings, history: RoomHistory, slots: ConnectionSlots) -> Notifier:
    codec = TokenCodec(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    deps = Deps(Hub(), history, owner_wait_seconds=settings.owner_wait_seconds)
    return Notifier(settings=settings, deps=deps, slots=slots, codec=codec)


# Starts the notifier's own event consumer (entrypoints/consumer.py) with this handler.
StartConsumer = Callable[[Broker, Callable[[Envelope], Awaitable[None]], int], Awaitable[Consumer]]


class Runtime:
    """The running notifier: ``start`` connects and starts everything, ``stop`` undoes it
    in reverse order (uvicorn runs both from the app's lifespan)."""

    def __init__(self, settings: NotifierSettings, start_consumer: StartConsumer) -> None:
        self.settings = settings
        self._start_consumer = start_consumer
        self._stack = AsyncExitStack()
        self.notifier: Notifier | None = None
        self.broker: Broker | None = None

    async def start(self) -> Notifier:
        settings, stack = self.settings, self._stack
        try:
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
            self.notifier, self.broker = notifier, broker
            await self._start_consumer(broker, notifier.on_event, settings.event_prefetch)
            if settings.webhooks_enabled or settings.mqtt_url is not None:
                # Webhooks and snapshots live in the api's Postgres.
                dsn = settings.database_url.get_secret_value()
                pool = await create_pool(dsn, 1, settings.db_pool_max)
                stack.push_async_callback(pool.close)
                if settings.webhooks_enabled:
                    await stack.enter_async_context(running_webhooks(settings, broker, pool))
                if settings.mqtt_url is not None:
                    await stack.enter_async_context(mqtt_bridge.running(settings, broker, pool))
            await stack.enter_async_context(background(notifier.renew_slots_forever()))
        except BaseException:
            await self.stop()
            raise
        return notifier

    async def stop(self) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``work`` as a task for as long as the context lasts."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_webhooks(
    settings: NotifierSettings, broker: Broker, pool: asyncpg.Pool
) -> AsyncIterator[Dispatcher]:
    """Consume the shared webhook queue and replay what the api queued, while it runs."""
    http = client(settings.webhook_timeout_seconds)
    sender = Sender(
        EgressPolicy.build(settings.allowed_networks),
        http,
        settings.webhook_attempts,
        settings.webhook_retry_initial_seconds,
        settings.webhook_retry_max_seconds,
        settings.webhook_circuit_threshold,
        settings.webhook_circuit_open_seconds,
    )
    db = WebhooksDb(pool, TtlCache(settings.webhook_cache_seconds, trusted=False))
    changes = webhook_changes(settings.database_url.get_secret_value(), db.cache)
    dispatcher = Dispatcher(db, sender, sealer_for(settings))
    try:
        async with background(changes.run()):
            consumer = await broker.consume(
                topology.NOTIFIER_WEBHOOKS, dispatcher.on_event, settings.webhook_prefetch
            )
            try:
                async with background(
                    dispatcher.replay_forever(settings.webhook_replay_poll_seconds)
                ):
                    yield dispatcher
            finally:
                await consumer.stop(grace=5.0)
    finally:
        await http.aclose()
