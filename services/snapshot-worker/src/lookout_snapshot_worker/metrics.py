"""Prometheus metrics of the worker (served on /metrics with the shared ones)."""

from __future__ import annotations

from lookout_shared.contracts import PROBE_BATCH
from prometheus_client import Counter, Gauge, Histogram

# succeeded, transient (worth a retry: refused, reset, 5xx...), permanent (404, 401, no
# video...), timeout (killed at the wall-clock limit), unavailable (the binary could not be
# started), cancelled (shutdown), error (anything unforeseen).
OUTCOMES = ("succeeded", "transient", "permanent", "timeout", "unavailable", "cancelled", "error")

FFMPEG_RUNS = Counter(
    "lookout_ffmpeg_runs_total",
    "ffmpeg captures and ffprobe probes run (one per stream and attempt, however many streams"
    " a command carries), by tool and outcome",
    ["tool", "outcome"],
)
FFMPEG_DURATION = Histogram(
    "lookout_ffmpeg_duration_seconds",
    "Wall-clock time of one ffmpeg capture or ffprobe probe, by tool and outcome",
    ["tool", "outcome"],
    # Up to the default 20 s wall-clock limit, and a little past it.
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)

# Every series exists from the start: a rate over a series that appears late misses its
# first increments.
for _tool in ("ffmpeg", "ffprobe"):
    for _outcome in OUTCOMES:
        FFMPEG_RUNS.labels(_tool, _outcome)

COMMANDS_DEFERRED = Counter(
    "lookout_worker_commands_deferred_total",
    "Commands published again at the back of their queue because their tenant held its"
    " share of this worker's slots for longer than LOOKOUT_TENANT_WAIT_SECONDS (messages,"
    f" not streams: a stream.probe command carries up to {PROBE_BATCH} streams)",
    ["queue"],
)
for _queue in ("snapshot.capture", "stream.probe"):
    COMMANDS_DEFERRED.labels(_queue)

HOT_HELD = Gauge("lookout_hot_streams_held", "Hot streams this worker holds (reader running)")
HOT_FRAMES = Counter(
    "lookout_hot_frames_total", "Frames of hot streams this worker published to Redis"
)
HOT_SNAPSHOTS = Counter(
    "lookout_hot_snapshots_total",
    "Captures answered with a hot stream's fresh frame instead of running ffmpeg",
)
