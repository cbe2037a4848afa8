"""``/sse?rooms=a,b``: the same rooms as ``/ws`` for clients that cannot speak WebSocket.

Same token (``Authorization: Bearer`` or ``?token=``), Origin allow-list, room rules,
per-user cap, send queue and token expiry. ``Last-Event-ID`` (or ``?last_event_id=``, for
a first connect from EventSource, which cannot set headers) resumes every room at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from lookout_shared.http import Problem
from lookout_shared.tokens import InvalidToken, Principal
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lookout_notifier import handlers, metrics
from lookout_notifier.adapters.sse import SseTransport
from lookout_notifier.bootstrap import Notifier
from lookout_notifier.domain import frames
from lookout_notifier.domain.event_ids import BadEventId, parse_event_id
from lookout_notifier.domain.history import Position
from lookout_notifier.domain.policy import origin_allowed
from lookout_notifier.domain.rooms import BadRoom, Room, parse_room
from lookout_notifier.entrypoints.auth import credentials
from lookout_notifier.entrypoints.session import session

router = APIRouter()

HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # proxies must not hold events back
}


@router.get("/sse", response_model=None)
async def sse_endpoint(request: Request, rooms: str = "") -> Response:
    notifier: Notifier = request.app.state.notifier
    settings = notifier.settings
    if not origin_allowed(request.headers.get("origin"), settings.notifier_allowed_origins):
        metrics.REFUSED.labels("origin").inc()
        raise Problem(403, "Forbidden", "origin not allowed")
    principal = _authenticate(request, notifier)
    wanted = _rooms(rooms, settings.sse_max_rooms)
    since = _last_event_ids(request, settings.sse_max_rooms)
    for room in wanted:
        if not await handlers.may_subscribe(principal, room, notifier.deps):
            # The same answer for a room that does not exist and one of another tenant.
            raise Problem(404, "Not Found", frames.FORBIDDEN_DETAIL, room=str(room))
    return EventStream(notifier, principal, [(room, since.get(room)) for room in wanted])


def _authenticate(request: Request, notifier: Notifier) -> Principal:
    token = credentials(request.headers, [], request.query_params).token
    try:
        if token is None:
            raise InvalidToken("no token")
        return notifier.codec.verify(token)
    except InvalidToken:
        metrics.REFUSED.labels("token").inc()
        raise Problem(
            401,
            "Unauthorized",
            "invalid or missing token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None


def _rooms(text: str, limit: int) -> list[Room]:
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise Problem(400, "Bad Request", "?rooms= must name at least one room")
    if len(names) > limit:
        raise Problem(400, "Bad Request", f"at most {limit} rooms per stream")
    try:
        return [parse_room(name) for name in names]
    except BadRoom as exc:
        raise Problem(400, "Bad Request", str(exc), code=frames.BAD_ROOM) from None


def _last_event_ids(request: Request, limit: int) -> dict[Room, Position]:
    text = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if not text:
        return {}
    try:
        return parse_event_id(text, limit)
    except BadEventId as exc:
        raise Problem(400, "Bad Request", str(exc)) from None


class EventStream(Response):
    """Streams the rooms' frames through a Connection until the client leaves, the token
    expires, the send queue overflows or the server shuts down."""

    media_type = "text/event-stream"

    def __init__(
        self,
        notifier: Notifier,
        principal: Principal,
        rooms: list[tuple[Room, Position | None]],
    ) -> None:
        super().__init__(headers=HEADERS, media_type=self.media_type)
        # A stream has no length: drop the content-length Response computed for no body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._notifier, self._principal, self._rooms = notifier, principal, rooms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        resumed = {str(room): at for room, at in self._rooms if at is not None}
        transport = SseTransport(send, resumed)
        async with session(self._notifier, self._principal, transport) as conn:
            if conn is None:
                response = Response(
                    '{"type":"about:blank","title":"Too Many Requests","status":429,'
                    '"detail":"too many connections for this user"}',
                    status_code=429,
                    media_type="application/problem+json",
                )
                await response(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            for room, at in self._rooms:
                subscribe = (
                    frames.Subscribe(room)
                    if at is None
                    else frames.Subscribe(room, at.seq, at.epoch)
                )
                await handlers.join(conn, subscribe, self._notifier.deps)
            await transport.run(receive, self._notifier.settings.heartbeat_seconds)
