"""The one place that wires the notifier together; tests pass in-memory twins here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from lookout_shared import topology
from lookout_shared.addresses import EgressPolicy
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope
from lookout_shared.sealed import sealer_for
from lookout_shared.tokens import TokenCodec

from lookout_notifier import handlers
from lookout_notifier.adapters.webhook_sender import Sender, client
from lookout_notifier.adapters.webhooks_db import WebhooksDb
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
        """Renew this instance's connection slots well before their leases end."""
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


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[None]:
    """The notifier's background work, for as long as the app runs."""
    task = asyncio.create_task(notifier.renew_slots_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bootstrap(settings: NotifierSettings, history: RoomHistory, slots: ConnectionSlots) -> Notifier:
    codec = TokenCodec(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    deps = Deps(Hub(), history, owner_wait_seconds=settings.owner_wait_seconds)
    return Notifier(settings=settings, deps=deps, slots=slots, codec=codec)


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
    dispatcher = Dispatcher(WebhooksDb(pool), sender, sealer_for(settings))
    consumer = await broker.consume(
        topology.NOTIFIER_WEBHOOKS, dispatcher.on_event, settings.webhook_prefetch
    )
    replays = asyncio.create_task(dispatcher.replay_forever(settings.webhook_replay_poll_seconds))
    try:
        yield dispatcher
    finally:
        replays.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replays
        await consumer.stop(grace=5.0)
        await http.aclose()
