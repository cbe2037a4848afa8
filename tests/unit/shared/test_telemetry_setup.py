"""What setting up tracing does to the process (run in a fresh interpreter each: it is once
per process)."""

from __future__ import annotations

import os
import subprocess
import sys

from lookout_shared import telemetry

PROBE = (
    "import sys; from lookout_shared import telemetry; "
    "telemetry.setup_tracing('probe'); print(sys.getswitchinterval())"
)


def switch_interval_after_setup(**env: str) -> float:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def test_exporting_spans_shortens_the_gil_switch_interval() -> None:
    # The exporter thread holds the GIL while it encodes a batch; the event loop must not
    # wait the default 5 ms for it. (Nothing is exported: no span is made.)
    exporting = switch_interval_after_setup(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert exporting == telemetry.EXPORT_SWITCH_INTERVAL < 0.005


def test_without_an_exporter_the_interpreter_keeps_its_default() -> None:
    assert switch_interval_after_setup() == 0.005
