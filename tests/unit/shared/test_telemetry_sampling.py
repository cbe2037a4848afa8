"""The sampling decision taken before a span is built (a cache hit without a parent): it
must agree with the SDK's own, so the configured ratio holds, and build nothing when no."""

from __future__ import annotations

from lookout_shared.telemetry import root_sampled, tracer_provider, untraced
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

SERVER = trace.SpanKind.SERVER


def provider(ratio: float) -> trace.TracerProvider:
    return tracer_provider(Resource.create({}), ParentBased(TraceIdRatioBased(ratio)))


def test_a_root_decided_sampled_ahead_gives_a_sampled_span_not_the_ratio_squared() -> None:
    """Had the span drawn a trace id of its own, half of those decided sampled at 0.5 would
    be dropped again (a quarter kept instead of half)."""
    p = provider(0.5)
    tracer = p.get_tracer("tests")
    decided = 0
    for _ in range(400):
        if root_sampled("GET /x", SERVER, p):
            decided += 1
            span = tracer.start_span("GET /x", kind=SERVER)
            assert span.is_recording()
            span.end()
    assert 140 < decided < 260  # about half


def test_ratio_zero_never_samples_and_one_always_does() -> None:
    assert not any(root_sampled("GET /x", SERVER, provider(0.0)) for _ in range(200))
    always = provider(1.0)
    assert all(root_sampled("GET /x", SERVER, always) for _ in range(200))


def test_without_an_sdk_provider_nothing_is_sampled() -> None:
    assert not root_sampled("GET /x", SERVER, trace.NoOpTracerProvider())


def test_client_calls_made_untraced_start_no_span_of_their_own() -> None:
    """The read cache's Redis calls in front of the app run outside any trace: untraced()
    turns the Redis and Postgres instrumentations off there (they check this flag)."""
    assert is_instrumentation_enabled()
    with untraced():
        assert not is_instrumentation_enabled()
    assert is_instrumentation_enabled()
