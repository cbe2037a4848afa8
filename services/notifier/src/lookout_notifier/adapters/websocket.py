"""The Transport port over a Starlette WebSocket."""

from __future__ import annotations

from collections.abc import Callable

from starlette.websockets import WebSocket

from lookout_notifier.adapters.uvicorn_ws import WRITE_BUFFER


class WebSocketTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        # Served by another protocol (tests, other servers): only the send queue is counted.
        extension = (websocket.scope.get("extensions") or {}).get(WRITE_BUFFER, {})
        self._buffer_size: Callable[[], int] = extension.get("size", lambda: 0)

    def buffered(self) -> int:
        return self._buffer_size()

    async def send_text(self, text: str) -> None:
        await self._ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, reason=reason)
