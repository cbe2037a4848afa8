"""Prometheus metrics of the api (served on /metrics with the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CACHE_REQUESTS = Counter(
    "lookout_cache_requests_total",
    "Read cache lookups by kind (stream, list) and result (hit, miss, bypass, error)",
    ["kind", "result"],
)
CACHE_SECONDS = Histogram(
    "lookout_cache_seconds",
    "Time of one read cache lookup in Redis",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

FRAME_ENCODES = Counter(
    "lookout_api_frame_encodes_total", "Latest-frame images resized and encoded"
)
FRAME_CACHE_HITS = Counter(
    "lookout_api_frame_cache_hits_total", "Latest-frame images served from the encoded cache"
)
