"""Reads answered from the read cache before routing.

``GET /api/v1/streams/{id}`` and ``GET /api/v1/streams`` are the api's hottest reads. On a hit
this middleware answers from Redis without FastAPI's routing, dependency resolution or
validation (which cost more than the Postgres query they would lead to). On a miss it lets the
route answer as usual and keeps the response for the next read.

``GET /api/v1/counts`` and ``GET /api/v1/dashboard/summary`` are kept the same way, but only
in each process (``LOCAL_ONLY``), never in Redis: a counts copy goes as soon as the
aggregator changes that scope's counts or Redis loses them (cache_tracking.py), so it is as
fresh as the Redis read it saves (one script with an ``INFO server`` for the counts epoch); a
dashboard's counts likewise, and the rest of it (queue depths, outbox age, recent failures)
is at most ``LOOKOUT_DASHBOARD_CACHE_SECONDS`` old. A stream write of the tenant drops both.

An entry is keyed by what the response depends on: the kind of read, the tenant it covers
(``platform`` for a superuser), the fields the caller's role may see, the path, the query
parameters as the route reads them (``route_query``) and whether the client takes gzip (the
entry holds the bytes as sent). So no tenant ever receives another's entry and no role a
field it may not see. The caller must be known without I/O (a valid JWT, or an API key this
process looked up recently); anyone else, and anything the route would refuse, takes the
normal path. Only ``200`` answers are kept.

The list route says which count fields its total came from (``scope["state"]["cache_watch"]``)
and under which counts epoch (``cache_counts_epoch``), so an entry also lapses as soon as the
aggregator's counts move or Redis loses them. When Redis is down the route
answers from Postgres and the response says so: ``X-Lookout-Degraded: redis``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from lookout_shared.logs import bind_tenant
from lookout_shared.tokens import Principal
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookout_api.adapters.read_cache import CacheKey, Entry, RedisUnavailable
from lookout_api.bootstrap import Deps
from lookout_api.domain import access, etags
from lookout_api.entrypoints.hit_spans import hit_span
from lookout_api.handlers.auth import KnownCallers
from lookout_api.metrics import CACHE_REQUESTS as REQUESTS
from lookout_api.settings import ApiSettings

LIST_PATH = "/api/v1/streams"
STREAM_PATH = re.compile(r"/api/v1/streams/[0-9A-Fa-f-]{32,36}")
COUNTS_PATH = "/api/v1/counts"
DASHBOARD_PATH = "/api/v1/dashboard/summary"
OTHER_PATHS = {COUNTS_PATH: "counts", DASHBOARD_PATH: "dashboard"}
DEGRADED = (b"x-lookout-degraded", b"redis")
WATCH = "cache_watch"  # the scope state keys the list route fills
COUNTS_EPOCH = "cache_counts_epoch"
KEEP = "cache_keep"  # a LOCAL_ONLY route says its answer may be kept
KEPT_HEADERS = ("etag", "content-encoding", "vary")


class CachedReads:
    def __init__(self, app: ASGIApp, owner: Starlette, callers: KnownCallers) -> None:
        self.app = app
        self.owner = owner  # the application whose state holds the Deps
        self.callers = callers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = kind_of(scope)
        deps: Deps | None = getattr(self.owner.state, "deps", None) if kind else None
        if kind is None or deps is None:
            await self.app(scope, receive, send)
            return
        if not deps.cache.enabled:
            COUNTED[kind, "bypass"].inc()
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        principal = self.callers.principal(deps, headers.get(b"authorization", b""))
        if principal is None:
            await self.app(scope, receive, send)
            return
        bind_tenant(principal.tenant_id)
        key = CacheKey(
            kind,
            access.tenant_filter(principal),
            (
                scope["path"],
                route_query(scope["query_string"]),
                _fields(principal),
                b"gzip" in headers.get(b"accept-encoding", b"").lower(),
            ),
        )
        kept_for = LOCAL_ONLY.get(kind)
        try:
            found = deps.cache.local_lookup(key) if kept_for else await deps.cache.lookup(key)
        except RedisUnavailable as exc:
            COUNTED[kind, "bypass" if exc.skipped else "error"].inc()
            await self.app(scope, receive, _degraded(send))
            return
        if found.entry is not None:
            COUNTED[kind, "hit"].inc()
            scope["route"] = TEMPLATES[kind]
            span = hit_span(kind, headers.get(b"traceparent"), headers.get(b"tracestate"))
            if span is None:
                await _answer(found.entry, headers.get(b"if-none-match"), send)
                return
            with trace.use_span(span, end_on_exit=True):
                await _answer(found.entry, headers.get(b"if-none-match"), send)
                span.set_attribute("lookout.cache", "hit")
            return
        COUNTED[kind, "miss"].inc()
        response = _Recorder(send)
        await self.app(scope, receive, response.send)
        entry = response.entry()
        if entry is None:
            return
        state = scope.get("state", {})
        if kept_for is not None:
            if state.get(KEEP):
                deps.cache.keep_local(key, found, entry, kept_for(deps.settings))
            return
        watched: dict[str, str | None] = state.get(WATCH, {})
        with contextlib.suppress(RedisUnavailable):  # answered already; the next read retries
            await deps.cache.store(key, found, entry, watched, state.get(COUNTS_EPOCH))


@dataclass(frozen=True)
class _Template:
    """Stands in for the route a hit never reaches, so request metrics name its template."""

    path: str


TEMPLATES = {
    "list": _Template(LIST_PATH),
    "stream": _Template(LIST_PATH + "/{stream_id}"),
    "counts": _Template(COUNTS_PATH),
    "dashboard": _Template(DASHBOARD_PATH),
    "frame": _Template(LIST_PATH + "/{stream_id}/latest.jpg"),
}
# Kinds kept only in each process, and for how long at most (None: the layer's own time).
# Counts copies go as soon as the aggregator changes the scope's counts (cache_tracking.py)
# so they are as fresh as a read from Redis; a dashboard may be this old.
LOCAL_ONLY: dict[str, Callable[[ApiSettings], float | None]] = {
    "counts": lambda settings: None,
    "dashboard": lambda settings: settings.dashboard_cache_seconds,
}
# The counters of every (kind, result), bound once: labels() per request costs a lock.
COUNTED = {
    (kind, result): REQUESTS.labels(kind, result)
    for kind in TEMPLATES
    for result in ("hit", "miss", "bypass", "error")
}


def kind_of(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path = scope["path"]
    if path == LIST_PATH:
        return "list"
    if STREAM_PATH.fullmatch(path):
        return "stream"
    return OTHER_PATHS.get(path)


def route_query(query_string: bytes) -> tuple[tuple[str, str], ...]:
    """The query parameters as the route sees them, parsed as Starlette parses them: in
    order of name, so ``a=1&b=2`` and ``b=2&a=1`` share an entry, but a repeated name's
    values in the order sent, since the order decides the answer (a single-valued
    parameter takes the last: ``limit=1&limit=3`` is not ``limit=3&limit=1``). Short
    query strings are remembered: hot reads repeat theirs."""
    known = _QUERIES.get(query_string)
    if known is not None:
        return known
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    parsed = tuple(sorted(pairs, key=lambda pair: pair[0]))  # stable: values keep their order
    if len(query_string) <= QUERY_MAX_BYTES:
        if len(_QUERIES) >= QUERIES_MAX:
            _QUERIES.clear()
        _QUERIES[query_string] = parsed
    return parsed


# Parsed query strings, cleared when full: a plain dict (not a cachetools cache) because this
# lookup is on every cached GET hit, where a dict lookup is the whole cost.
_QUERIES: dict[bytes, tuple[tuple[str, str], ...]] = {}
QUERIES_MAX, QUERY_MAX_BYTES = 4096, 512
# The stream fields each role may see: the same for every caller of a role.
_ROLE_FIELDS: dict[str, tuple[str, ...]] = {}


def _fields(principal: Principal) -> tuple[str, ...]:
    fields = _ROLE_FIELDS.get(principal.role)
    if fields is None:
        fields = _ROLE_FIELDS[principal.role] = access.visible_fields(principal)
    return fields


async def _answer(entry: Entry, if_none_match: bytes | None, send: Send) -> None:
    etag = entry.headers.get("etag")
    if etag and if_none_match and etags.matches(if_none_match.decode("latin-1"), etag):
        headers = [(b"etag", etag.encode("latin-1"))]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = list(entry.raw_headers)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})


def _degraded(send: Send) -> Send:
    async def degraded(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(k.lower() == DEGRADED[0] for k, _ in headers):  # the route may say so
                message = {**message, "headers": [*headers, DEGRADED]}
        await send(message)

    return degraded


class _Recorder:
    """Passes the route's response through and keeps a copy of a cacheable one."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self._send(message)

    def entry(self) -> Entry | None:
        if self.status != 200 or "x-lookout-degraded" in self.headers:
            return None
        kept = {k: v for k, v in self.headers.items() if k in KEPT_HEADERS}
        return Entry(b"".join(self.chunks), kept)
