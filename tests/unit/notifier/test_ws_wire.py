"""The WebSocket side: the wire protocol's count of what a client has not taken yet, and
the heartbeat sweep over every connection."""

from __future__ import annotations

import asyncio
from typing import Any

from lookout_notifier.adapters.memory import MemoryConnectionSlots, MemoryRoomHistory
from lookout_notifier.adapters.ws_wire import WireProtocol
from lookout_notifier.bootstrap import bootstrap
from lookout_notifier.domain.outgoing import Outgoing
from lookout_notifier.entrypoints.ws import SWEEP_SLICE, Gateway
from lookout_notifier.settings import NotifierSettings

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class HoldingTransport(asyncio.Transport):
    """Keeps every byte written until the test says the socket took some."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0

    def write(self, data: Any) -> None:
        self.held += len(data)

    def take(self, n: int) -> None:
        self.held -= n

    def get_write_buffer_size(self) -> int:
        return self.held

    def is_closing(self) -> bool:
        return False


async def open_protocol() -> tuple[WireProtocol, HoldingTransport]:
    transport = HoldingTransport()
    proto = WireProtocol(set(), max_size=16384)
    proto.connection_made(transport)
    proto.data_received(HANDSHAKE)
    transport.take(transport.held)  # the handshake answer went out
    return proto, transport


async def test_a_client_that_keeps_reading_is_not_counted_behind() -> None:
    """Frames the socket has taken leave the count even if the buffer never empties (a
    steady stream of big frames): only the ones still held count against the bound."""
    proto, transport = await open_protocol()
    frame = Outgoing('{"x":"' + "y" * 1000 + '"}')
    for _ in range(10):
        proto.write(frame, True)
        transport.take(transport.held - len(frame.wire) // 2)  # all but half of the last
    assert proto.unsent() == (1, len(frame.wire) // 2)


async def test_replayed_frames_are_not_counted_as_live() -> None:
    proto, transport = await open_protocol()
    frame = Outgoing('{"op":"subscribed"}')
    for _ in range(5):
        proto.write(frame, False)
    proto.write(frame, True)
    assert proto.unsent() == (1, 6 * len(frame.wire))
    transport.take(transport.held)
    assert proto.unsent() == (0, 0)


class PingedSocket:
    """Stands in for a connection in the heartbeat sweep: alive, records its pings."""

    last_seen = float("inf")

    def __init__(self, log: list[str], swept: asyncio.Event, of: int) -> None:
        self._log, self._swept, self._of = log, swept, of

    def ping(self) -> None:
        if not self._log:  # the first ping: an event arrives meanwhile
            asyncio.get_running_loop().call_soon(self._log.append, "event")
        self._log.append("ping")
        if self._log.count("ping") == self._of:
            self._swept.set()

    def end_with(self, code: int, reason: str) -> None:
        self._log.append("closed")


async def test_heartbeat_sweep_lets_events_through_between_slices() -> None:
    settings = NotifierSettings(heartbeat_seconds=0.01, idle_timeout_seconds=10)
    gateway = Gateway(bootstrap(settings, MemoryRoomHistory(), MemoryConnectionSlots()))
    log: list[str] = []
    swept, n = asyncio.Event(), 1000
    gateway.sockets = {PingedSocket(log, swept, n) for _ in range(n)}  # type: ignore[misc]
    sweeping = asyncio.create_task(gateway.heartbeat_forever())
    await asyncio.wait_for(swept.wait(), 5)
    sweeping.cancel()
    assert "closed" not in log
    assert log.index("event") <= SWEEP_SLICE + 1 < n  # mid-sweep, not after it
