"""The ids of the current span, read where both the log formatter and the tracing setup
can import them: :mod:`lookout_shared.logs` stamps them on every line, and
:mod:`lookout_shared.telemetry` configures logging, so neither may import the other for them.
"""

from __future__ import annotations

from opentelemetry import trace


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, for log lines; None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")
