"""OpenTelemetry tracing for every service, configured by the standard ``OTEL_*`` variables.

Export is off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set;
then spans go over OTLP/HTTP. Sampling: ``OTEL_TRACES_SAMPLER`` when set (the SDK's
names); otherwise ``parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG`` (default
:data:`DEFAULT_RATIO`): a trace started upstream is kept or dropped whole as its parent
decided, and of the traces started here one in ten is kept, so a busy api does not spend
its time exporting spans of identical cache hits. Postgres (asyncpg) and Redis calls are traced by their
instrumentations; FastAPI apps by :func:`instrument_app`; RabbitMQ hops by the broker adapter,
which carries the W3C ``traceparent`` in AMQP headers both ways (and the outbox stores it, so
a trace continues across the relay).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, TraceIdRatioBased

from lookout_shared.logs import configure_logging, scrub

_configured = False
DEFAULT_RATIO = 0.1
# The span exporter's thread encodes a batch of spans in Python, holding the GIL, and the
# event loop waits up to the interpreter's switch interval (5 ms by default) each time it
# wants it back: that wait was most of the api's p99 under load (latest.jpg at 64
# connections: p99 12.7-15.7 ms with 5 ms, 10.3-11.5 ms with this; 7.8-8.4 ms exporting
# nothing). A shorter interval only costs when two threads contend, i.e. while a batch is
# being exported.
EXPORT_SWITCH_INTERVAL = 0.0005


def sampler() -> Sampler | None:
    """None when ``OTEL_TRACES_SAMPLER`` names one (the SDK reads it then)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", DEFAULT_RATIO))
    except ValueError:
        ratio = DEFAULT_RATIO
    return ParentBased(TraceIdRatioBased(min(max(ratio, 0.0), 1.0)))


class _DrawnAhead(RandomIdGenerator):
    """Random ids, but a trace id drawn for a decision ahead of a span (:func:`root_sampled`)
    is the next one its thread hands out: the span carries the id it was sampled on, so the
    ratio stays the sampler's own."""

    def __init__(self) -> None:
        self._drawn = threading.local()

    def keep(self, trace_id: int) -> None:
        self._drawn.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int = getattr(self._drawn, "trace_id", 0)
        if trace_id:
            self._drawn.trace_id = 0
            return trace_id
        return super().generate_trace_id()


_IDS = _DrawnAhead()


def root_sampled(
    name: str, kind: trace.SpanKind, provider: trace.TracerProvider | None = None
) -> bool:
    """Whether a span started now without a parent would be sampled, decided before any
    span object is built: an unsampled one (nine in ten by default) then costs a random
    draw and the sampler's arithmetic, not a span. When True, the next root span started
    on this thread takes the trace id the decision was made on (a provider made by
    :func:`tracer_provider`; the global one by default). False when tracing is off."""
    sampler = getattr(provider or trace.get_tracer_provider(), "sampler", None)
    if not isinstance(sampler, Sampler):
        return False
    trace_id = _IDS.generate_trace_id()
    if sampler.should_sample(None, trace_id, name, kind).decision != Decision.RECORD_AND_SAMPLE:
        return False
    _IDS.keep(trace_id)
    return True


def untraced() -> AbstractContextManager[None]:
    """Client calls made inside (Redis, Postgres) make no span. For work a request does
    outside any trace (the read cache's lookups in front of the app): there the
    instrumentations would start a root trace per call, sampled on its own, which costs a
    span each and exports lone Redis commands nobody asked to trace."""
    return suppress_instrumentation()


def export_enabled() -> bool:
    return (
        bool(
            os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        and os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
    )


def tracer_provider(resource: Resource, sampler: Sampler | None) -> TracerProvider:
    """The SDK's provider, with the ids :func:`root_sampled` decides on."""
    return TracerProvider(resource=resource, sampler=sampler, id_generator=_IDS)


def setup_tracing(service_name: str) -> None:
    """Install the tracer provider and the client-library instrumentations, once."""
    global _configured
    if _configured or not export_enabled():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    name = os.environ.get("OTEL_SERVICE_NAME") or f"lookout-{service_name}"
    provider = tracer_provider(Resource.create({"service.name": name}), sampler())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    sys.setswitchinterval(EXPORT_SWITCH_INTERVAL)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()
    _configured = True


def setup_process(service_name: str, log_level: str) -> None:
    """What every service's ``main`` does first: JSON logs, then tracing (if configured)."""
    configure_logging(service_name, log_level)
    setup_tracing(service_name)


def instrument_app(app: FastAPI) -> None:
    if export_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, server_request_hook=_scrub_url, excluded_urls="healthz,readyz,metrics"
        )


def _scrub_url(span: trace.Span, scope: Mapping[str, Any]) -> None:
    """The server span's URL carries the query string, and ``/ws?token=`` puts an access
    token there: scrub it like a log line before it is exported."""
    if not scope.get("query_string"):
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.url", "http.target", "url.full", "url.query"):
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, scrub(value))


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current trace context (``traceparent``) into message headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, Any] | None) -> context.Context:
    """The trace context carried by message headers (empty when there is none)."""
    carrier = {
        k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (headers or {}).items()
    }
    return propagate.extract(carrier)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
