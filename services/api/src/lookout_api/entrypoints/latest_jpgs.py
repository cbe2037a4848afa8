"""``GET /api/v1/streams/{id}/latest.jpg`` of a hot frame answered in front of the app, from
the image the encoder already keeps for that frame, size and quality
(adapters/frame_encoder.py): no routing, no dependency, and of the frame in Redis only its
identity (``captured_at``, one small ``HGET``) instead of the whole JPEG, so a newer frame
is served the moment the worker publishes it. That identity is itself kept in process
(adapters/frame_identities.py) until Redis says the stream's frame key changed, so a hit
costs no round trip at all. It serves only what the route would serve
the same caller, by the same checks, and passes anything else on to the route:

- the caller: a known bearer token or API key (handlers.auth.KnownCallers, as cached reads),
  or, without an ``Authorization`` header, a signed URL's ``exp`` and ``sig`` for this
  stream's ``latest_jpg`` (domain/signed_urls.py);
- the tenancy: the stream's tenant as the route knows it (``Deps.stream_tenants``), within
  the caller's scope;
- the query: only ``width``, ``height`` and ``quality`` as plain numbers the route accepts,
  and ``exp``/``sig`` (without credentials), each at most once;
- headers: ``ETag``, ``Last-Modified``, ``Cache-Control``, ``X-Frame-Source: hot``,
  ``X-Frame-Age`` and ``X-Frame-Offline`` as the route sets them, and the same 304.

An invalid request, an unknown caller, a stream not yet seen, a refused signature, no hot
frame, an image not encoded yet, Redis failing: the route answers, with its own errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from datetime import UTC, datetime

from lookout_shared.logs import bind_tenant
from lookout_shared.telemetry import untraced
from opentelemetry import trace
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from lookout_api.adapters import hot_frames_redis
from lookout_api.adapters.redis_reads import QUICK_SECONDS
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, frames, signed_urls
from lookout_api.domain.errors import DomainError
from lookout_api.entrypoints.cached_reads import TEMPLATES, route_query
from lookout_api.entrypoints.hit_spans import hit_span
from lookout_api.entrypoints.ranged_file import http_date, not_modified
from lookout_api.entrypoints.routes.images import REVALIDATE
from lookout_api.handlers.auth import KnownCallers
from lookout_api.handlers.frames import encoded_key
from lookout_api.metrics import CACHE_REQUESTS as REQUESTS

LATEST_JPG = re.compile(r"/api/v1/streams/([0-9A-Fa-f-]{32,36})/latest\.jpg")
SIZES = ("width", "height", "quality")
CONDITIONS = (b"if-none-match", b"if-modified-since")
HIT, MISS = REQUESTS.labels("frame", "hit"), REQUESTS.labels("frame", "miss")
# An image's ETag, capture time and fixed headers, by its encoded key; a new frame makes new
# keys, so the map is emptied when it reaches this size.
MAX_VALIDATORS = 4096
_Validators = tuple[str, datetime, tuple[tuple[bytes, bytes], ...]]


class LatestJpgs:
    def __init__(self, app: ASGIApp, owner: Starlette, callers: KnownCallers) -> None:
        self.app = app
        self.owner = owner  # the application whose state holds the Deps
        self.callers = callers
        self._validators: dict[tuple[object, ...], _Validators] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = LATEST_JPG.fullmatch(scope["path"]) if scope["type"] == "http" else None
        deps: Deps | None = getattr(self.owner.state, "deps", None) if match else None
        if match is None or deps is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        answered = await self._answer(deps, scope, match.group(1), send)
        if not answered:
            await self.app(scope, receive, send)

    def _validate(
        self,
        key: tuple[object, ...],
        stream_id: uuid.UUID,
        captured_at: float,
        asked: frames.FrameRequest,
    ) -> _Validators:
        """The headers every answer of the image ``key`` shares (its ETag, Last-Modified...),
        made once per image: formatting them was a tenth of a hit's time."""
        etag = frames.etag(stream_id, captured_at, asked)
        captured = datetime.fromtimestamp(captured_at, UTC)
        headers = (
            (b"etag", etag.encode()),
            (b"last-modified", http_date(captured).encode()),
            (b"cache-control", REVALIDATE.encode()),
            (b"x-frame-source", b"hot"),
        )
        if len(self._validators) >= MAX_VALIDATORS:  # old frames' entries: start afresh
            self._validators.clear()
        found = self._validators[key] = (etag, captured, headers)
        return found

    async def _answer(self, deps: Deps, scope: Scope, stream: str, send: Send) -> bool:
        """Answer from the kept image; False (nothing sent) when the route must answer."""
        query = dict(route_query(scope["query_string"]))
        if len(query) != len(route_query(scope["query_string"])):
            return False  # a repeated parameter: the route decides
        try:
            stream_id = uuid.UUID(stream)
            width, height, quality = (_number(query.pop(name, None)) for name in SIZES)
            max_width = deps.settings.frame_max_width
            asked = frames.FrameRequest.checked(width, height, quality, max_width)
        except (ValueError, DomainError):
            return False
        headers = dict(scope["headers"])
        hit, tenant = deps.stream_tenants.get(stream_id.bytes)
        if not hit or tenant is None:
            return False
        authorization = headers.get(b"authorization")
        if authorization is not None:
            principal = self.callers.principal(deps, authorization)
            if principal is None or query:  # exp/sig beside credentials: the route checks them
                return False
            if not principal.can_see_tenant(uuid.UUID(tenant)):
                return False
            bind_tenant(access.tenant_filter(principal))
        else:
            exp, sig = query.pop("exp", None), query.pop("sig", None)
            if exp is None or sig is None or query:
                return False
            try:
                signed_urls.verify(
                    deps.settings.signing_key(),
                    uuid.UUID(tenant),
                    stream_id,
                    "latest_jpg",
                    exp,
                    sig,
                    time.time(),
                )
            except DomainError:
                return False
        captured_at = deps.frame_identities.get(stream_id) or await _captured_at(deps, stream_id)
        if captured_at is None:
            return False
        key = encoded_key(stream_id, "hot", captured_at, asked)
        image = deps.frames.peek(key)
        if image is None:
            MISS.inc()
            return False
        HIT.inc()
        scope["route"] = TEMPLATES["frame"]
        etag, captured, validators = self._validators.get(key) or self._validate(
            key, stream_id, captured_at, asked
        )
        age = max(0.0, time.time() - captured_at)
        raw = [*validators, (b"x-frame-age", f"{age:.3f}".encode())]
        if frames.is_offline(age, deps.settings.frame_offline_seconds):
            raw.append((b"x-frame-offline", b"true"))
        conditions = {
            name.decode(): headers[name].decode("latin-1") for name in CONDITIONS if name in headers
        }
        span = hit_span("frame", headers.get(b"traceparent"), headers.get(b"tracestate"))
        with trace.use_span(span, end_on_exit=True) if span else contextlib.nullcontext():
            if conditions and not_modified(conditions, etag, captured):
                await send({"type": "http.response.start", "status": 304, "headers": raw})
                await send({"type": "http.response.body", "body": b""})
                return True
            raw += [
                (b"content-length", str(len(image.jpeg)).encode()),
                (b"content-type", b"image/jpeg"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            await send({"type": "http.response.body", "body": image.jpeg})
        return True


async def _captured_at(deps: Deps, stream_id: uuid.UUID) -> float | None:
    """The hot frame's identity from Redis, kept in process until its key changes (None:
    no hot frame, or Redis failing: the route says what it can)."""
    seq = deps.frame_identities.seq
    try:
        async with asyncio.timeout(QUICK_SECONDS):
            with untraced():  # outside any trace yet: no lone Redis span
                captured_at = await hot_frames_redis.captured_at(deps.redis, deps.keys, stream_id)
    except (RedisError, OSError, TimeoutError) as exc:
        # Reported to the one breaker like every Redis failure, so the other paths skip
        # Redis too; this path does not ask the breaker first (no work added to a hit),
        # and the route behind it, which does, says what it can.
        deps.cache.breaker.trip(repr(exc))
        return None
    if captured_at is not None:
        deps.frame_identities.put(stream_id, captured_at, seq)
    return captured_at


def _number(text: str | None) -> int | None:
    """A size or quality as the route reads it; ValueError for anything but plain digits."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise ValueError(text)
    return int(text)
