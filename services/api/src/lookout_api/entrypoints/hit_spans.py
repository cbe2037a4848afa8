"""The span of a cache hit. Hits are answered in front of the tracing middleware (front.py),
so they make their own server span, named like the route's, continuing the caller's trace
(``traceparent``) under the same parent-based sampler; an unsampled one costs a sampler
call. Without tracing configured it is a no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lookout_shared.telemetry import export_enabled, tracer
from opentelemetry import propagate, trace

_TRACED = export_enabled()
_NAMES = {"stream": "GET /api/v1/streams/{stream_id}", "list": "GET /api/v1/streams"}
_TRACER = tracer(__name__)


@contextlib.contextmanager
def hit_span(kind: str, headers: dict[bytes, bytes]) -> Iterator[None]:
    if not _TRACED:
        yield
        return
    carrier = {
        name: headers[key].decode("latin-1")
        for name, key in (("traceparent", b"traceparent"), ("tracestate", b"tracestate"))
        if key in headers
    }
    parent = propagate.extract(carrier) if carrier else None
    with _TRACER.start_as_current_span(
        _NAMES[kind],
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": _NAMES[kind][4:]},
    ) as span:
        yield
        span.set_attribute("lookout.cache", "hit")
