"""The WebSocket wire protocol's count of what a client has not taken yet."""

from __future__ import annotations

import asyncio
from typing import Any

from lookout_notifier.adapters.ws_wire import WireProtocol
from lookout_notifier.outgoing import Outgoing

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
