"""The Transport port over a Starlette WebSocket."""

from __future__ import annotations

from starlette.websockets import WebSocket


class WebSocketTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_text(self, text: str) -> None:
        await self._ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, reason=reason)
