"""The span of a cache hit. Hits are answered in front of the tracing middleware (front.py),
so they make their own server span, named like the route's, continuing the caller's trace
(``traceparent``) under the same parent-based sampler. A hit without a parent asks the
sampler first (lookout_shared.telemetry.root_sampled) and builds no span at all when the
answer is no: its access line then carries no trace id, as there is no trace to find.
Without tracing configured there is never a span."""

from __future__ import annotations

from lookout_shared.telemetry import export_enabled, root_sampled
from opentelemetry import propagate, trace

_TRACED = export_enabled()
_NAMES = {
    "stream": "GET /api/v1/streams/{stream_id}",
    "list": "GET /api/v1/streams",
    "counts": "GET /api/v1/counts",
    "dashboard": "GET /api/v1/dashboard/summary",
    "frame": "GET /api/v1/streams/{stream_id}/latest.jpg",
}
_SERVER = trace.SpanKind.SERVER
_TRACER: list[trace.Tracer] = []  # resolved at the first sampled hit, after setup_tracing


def hit_span(kind: str, traceparent: bytes | None, tracestate: bytes | None) -> trace.Span | None:
    """The started span of a hit (the caller ends it), or None when none is to be made."""
    if not _TRACED:
        return None
    name = _NAMES[kind]
    if traceparent is None:
        if not root_sampled(name, _SERVER):
            return None
        parent = None
    else:
        carrier = {"traceparent": traceparent.decode("latin-1")}
        if tracestate is not None:
            carrier["tracestate"] = tracestate.decode("latin-1")
        parent = propagate.extract(carrier)
    if not _TRACER:
        _TRACER.append(trace.get_tracer(__name__))
    return _TRACER[0].start_span(
        name,
        context=parent,
        kind=_SERVER,
        attributes={"http.request.method": "GET", "http.route": name[4:]},
    )
