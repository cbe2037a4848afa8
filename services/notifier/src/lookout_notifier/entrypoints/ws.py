"""``/ws``: authenticate, then translate client frames into handler calls."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, WebSocket
from lookout_shared.tokens import InvalidToken, Principal

from lookout_notifier import handlers, metrics
from lookout_notifier.adapters.websocket import WebSocketTransport
from lookout_notifier.bootstrap import Notifier
from lookout_notifier.connection import POLICY_VIOLATION, Connection
from lookout_notifier.domain import frames
from lookout_notifier.domain.policy import origin_allowed
from lookout_notifier.domain.ratelimit import TokenBucket
from lookout_notifier.entrypoints.auth import credentials
from lookout_notifier.entrypoints.session import session

log = logging.getLogger(__name__)

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
    async with session(notifier, principal, WebSocketTransport(websocket)) as conn:
        if conn is None:
            await websocket.close(POLICY_VIOLATION, "too many connections")
            return
        await conn.serve(_read_frames(websocket, conn, notifier))


async def _read_frames(websocket: WebSocket, conn: Connection, notifier: Notifier) -> None:
    settings = notifier.settings
    limit = settings.max_frame_bytes
    bucket = TokenBucket(settings.client_rate_per_second, settings.client_burst, time.monotonic())
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            conn.peer_gone = True
            return
        if not bucket.take(time.monotonic()):
            metrics.REFUSED.labels("rate_limit").inc()
            conn.close(POLICY_VIOLATION, "rate limit exceeded")
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
        await handlers.handle_client_text(conn, text, notifier.rooms, notifier.codec)
