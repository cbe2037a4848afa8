"""``/ws``: authenticate, then translate client frames into handler calls."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, WebSocket
from lookout_shared.tokens import InvalidToken, Principal

from lookout_notifier import handlers, metrics
from lookout_notifier.adapters.websocket import WebSocketTransport
from lookout_notifier.bootstrap import Notifier
from lookout_notifier.connection import Connection
from lookout_notifier.domain import frames
from lookout_notifier.domain.policy import origin_allowed
from lookout_notifier.entrypoints.auth import credentials

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009

router = APIRouter()


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    notifier: Notifier = websocket.app.state.notifier
    settings = notifier.settings
    if not origin_allowed(websocket.headers.get("origin"), settings.notifier_allowed_origins):
        # Refused before the handshake completes: uvicorn answers 403, no socket is opened.
        metrics.REFUSED.labels("origin").inc()
        await websocket.close(POLICY_VIOLATION, "origin not allowed")
        return
    creds = credentials(
        websocket.headers, websocket.scope.get("subprotocols", []), websocket.query_params
    )
    # Accept first so that browsers, which cannot see a refused handshake's status, get 1008.
    await websocket.accept(subprotocol=creds.subprotocol)
    try:
        if creds.token is None:
            raise InvalidToken("no token")
        principal = notifier.codec.verify(creds.token)
    except InvalidToken:
        metrics.REFUSED.labels("token").inc()
        await websocket.close(POLICY_VIOLATION, "invalid or missing token")
        return
    await _serve(websocket, notifier, principal)


async def _serve(websocket: WebSocket, notifier: Notifier, principal: Principal) -> None:
    settings = notifier.settings
    conn = Connection(principal, WebSocketTransport(websocket), settings.send_queue_size)
    notifier.hub.connect(conn)
    # The token's expiry ends the connection too; a client reconnects with a fresh one.
    remaining = (principal.expires_at - datetime.now(UTC)).total_seconds()
    expiry = asyncio.get_running_loop().call_later(
        max(remaining, 0), conn.close, POLICY_VIOLATION, "token expired"
    )
    try:
        await conn.serve(_read_frames(websocket, conn, notifier))
    finally:
        expiry.cancel()
        notifier.hub.disconnect(conn)


async def _read_frames(websocket: WebSocket, conn: Connection, notifier: Notifier) -> None:
    limit = notifier.settings.max_frame_bytes
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            conn.peer_gone = True
            return
        text: str | None = message.get("text")
        size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
        # uvicorn enforces ws_max_size too (set from the same setting in main); this covers
        # any other server.
        if size > limit:
            conn.close(MESSAGE_TOO_BIG, "frame too large")
            return
        if text is None:
            conn.offer(frames.error(frames.BAD_FRAME, "frames are JSON text"))
            continue
        await handlers.handle_client_text(conn, text, notifier.hub, notifier.history)
