"""Prometheus metrics every service shares; each service adds its own with the same prefix.

Names follow Prometheus conventions: ``lookout_`` prefix, base units (seconds), ``_total``
for counters. Labels stay low-cardinality: route templates, never raw paths or ids.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "lookout_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "lookout_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)
MESSAGES_PROCESSED = Counter(
    "lookout_messages_processed_total",
    "Messages consumed, by outcome (ack, dead_letter, requeue)",
    ["queue", "outcome"],
)
MESSAGE_DURATION = Histogram(
    "lookout_message_processing_duration_seconds", "Time to handle one message", ["queue"]
)
QUEUE_UNACKED = Gauge(
    "lookout_queue_messages_unacked",
    "Messages delivered to this process from the queue and not yet acked or handed back",
    ["queue"],
)
QUEUE_READY = Gauge(
    "lookout_queue_messages_ready",
    "Messages waiting in a queue this process consumes (as of the last passive declare)",
    ["queue"],
)
DEAD_LETTERS = Gauge(
    "lookout_dead_letter_messages",
    "Messages in the dead-letter twin (<queue>.dead) of a queue this process consumes",
    ["queue"],
)
QUEUE_CONSUMERS = Gauge(
    "lookout_queue_consumers",
    "Consumers of a queue this process consumes, across every process",
    ["queue"],
)
MESSAGES_PUBLISHED = Counter(
    "lookout_messages_published_total", "Messages published with a broker confirm", ["exchange"]
)
OUTBOX_BACKLOG = Gauge("lookout_outbox_backlog_messages", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "lookout_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 if none)"
)


class HttpMetrics:
    """The request counter and histogram children of each (method, route, status), bound
    once: ``labels()`` per request takes a lock and builds a key."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_DURATION.labels(method, route),
            )
            self._children[method, route, status] = children
        children[0].inc()
        children[1].observe(seconds)


def record_http(app: FastAPI) -> None:
    """Count and time every request by its route template (``/api/v1/streams/{stream_id}``)."""
    app.add_middleware(_RecordHttp)


class _RecordHttp:
    """Plain ASGI middleware: unlike ``BaseHTTPMiddleware`` it never re-buffers a body, so
    streamed and ranged file responses stay streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = HttpMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router stores the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
