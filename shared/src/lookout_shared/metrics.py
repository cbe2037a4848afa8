"""Prometheus metrics every service shares; each service adds its own with the same prefix.

Names follow Prometheus conventions: ``lookout_`` prefix, base units (seconds), ``_total``
for counters. Labels stay low-cardinality: route templates, never raw paths or ids.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Gauge, Histogram

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
MESSAGES_UNACKED = Gauge(
    "lookout_messages_unacked", "Messages delivered to this process and not yet settled", ["queue"]
)
MESSAGES_PUBLISHED = Counter(
    "lookout_messages_published_total", "Messages published with a broker confirm", ["exchange"]
)
OUTBOX_BACKLOG = Gauge("lookout_outbox_backlog_messages", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "lookout_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 if none)"
)


def record_http(app: FastAPI) -> None:
    """Count and time every request by its route template (``/api/v1/streams/{stream_id}``)."""

    @app.middleware("http")
    async def _record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(request.method, template, str(status)).inc()
            HTTP_DURATION.labels(request.method, template).observe(time.perf_counter() - started)
