"""The one place that wires the notifier together; tests pass in-memory twins here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lookout_shared.envelope import Envelope
from lookout_shared.tokens import TokenCodec

from lookout_notifier import handlers
from lookout_notifier.hub import Hub
from lookout_notifier.ports import RoomHistory
from lookout_notifier.settings import NotifierSettings

GOING_AWAY = 1001


@dataclass
class Notifier:
    settings: NotifierSettings
    history: RoomHistory
    codec: TokenCodec
    hub: Hub = field(default_factory=Hub)
    # The broker hands deliveries over as concurrent tasks; a FIFO lock keeps each room's
    # frames in delivery order.
    _event_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def on_event(self, envelope: Envelope) -> None:
        async with self._event_lock:
            await handlers.handle_event(envelope, self.hub, self.history)

    def close_all(self) -> None:
        for conn in list(self.hub.connections):
            conn.close(GOING_AWAY, "server shutting down")


def bootstrap(settings: NotifierSettings, history: RoomHistory) -> Notifier:
    codec = TokenCodec(
        settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
    )
    return Notifier(settings=settings, history=history, codec=codec)
