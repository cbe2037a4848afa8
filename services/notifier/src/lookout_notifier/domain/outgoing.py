"""A server frame on its way out: its JSON text, and its WebSocket encoding made once.

Server frames are not masked, so the bytes of one frame are the same for every client: a
room's frame is encoded once and the same bytes are written to each of its connections.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode


class Outgoing:
    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text  # ASCII JSON: len() is its size in bytes
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The whole WebSocket text frame (header and payload), encoded on first use."""
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False, extensions=[])
        return self._wire

    def __len__(self) -> int:
        return len(self.text)
