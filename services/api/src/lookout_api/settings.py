"""The api's settings (``LOOKOUT_*`` variables) on top of the shared ones."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from lookout_shared.settings import ServiceSettings
from pydantic import field_validator


class ApiSettings(ServiceSettings):
    service_name: str = "api"
    access_token_minutes: int = 15
    # Where browsers reach the notifier (http or https; the page derives ws/wss from it). The
    # operator page at /ui learns it from /ui/config.json and its CSP allows it in connect-src.
    public_notifier_url: str = "http://127.0.0.1:8001"
    # How long a process trusts an API key lookup: the bound on revocation.
    api_key_cache_seconds: float = 30.0
    # Login rate limits (domain/login_limits.py): every attempt per client address; failed
    # attempts per e-mail from one address (that address alone is then refused); failed
    # attempts per e-mail from all addresses (past it, an address that failed waits for the
    # window to end, one that did not still logs in). Both failure counts share a window.
    login_ip_limit: int = 30
    login_ip_window_seconds: int = 60
    login_client_failure_limit: int = 10
    login_email_failure_limit: int = 100
    login_email_window_seconds: int = 300
    # Proxies whose X-Forwarded-For names the client address (comma-separated addresses or
    # CIDRs, uvicorn's forwarded_allow_ips; "*" trusts every peer). Empty: the header is
    # ignored and the client address is the TCP peer's, as it must be without a proxy that
    # overwrites the header (a client could otherwise pick any address per request).
    forwarded_allow_ips: str = ""
    # Larger request bodies answer 413 (a full bulk request of 500 streams fits).
    max_body_bytes: int = 2 * 1024 * 1024
    # A list total waits this long for Redis before counting in SQL instead. Like the cache
    # timeout below, it also measures the event loop's own backlog: under a full load a
    # healthy Redis answer can wait tens of milliseconds for its turn, and a tighter bound
    # would trip the breaker and send the whole load to Postgres.
    counts_timeout_seconds: float = 0.5
    # Tenant quotas when the tenant has no value of its own: streams it may hold, and
    # snapshot requests per minute (counted in Redis; without Redis they are not limited).
    default_max_streams: int = 10_000
    default_snapshot_requests_per_minute: int = 600
    # Hot streams a tenant may hold when it has no value of its own (each one keeps a
    # worker's decoder busy, so they are counted apart from streams).
    default_max_hot_streams: int = 100
    # The dashboard lists this many recent failed jobs and streams in error.
    dashboard_failures_limit: int = 10
    # Each process answers a dashboard summary it made for up to this long (0: never), for
    # the same caller scope, role and query: its queue depths, outbox age and failures may
    # be that old. A stream write of the tenant drops it at once.
    dashboard_cache_seconds: float = 1.0
    # The read cache of stream reads in Redis; "off" skips it entirely (rollback, benchmarks).
    cache: Literal["on", "off"] = "on"
    # An entry lives this long at most: the bound on how late a change made outside the api
    # (the worker's probe sets status, width, height, codec) shows in a cached read.
    cache_ttl_seconds: float = 30.0
    # In-process copies of entries, served without asking Redis for this long (0: off).
    # They are invalidated through Redis (adapters/cache_tracking.py): a write through any
    # api process drops every process's copies of its tenant within one message's delay.
    # While that channel is down they are not served; it is pinged every
    # cache_local_heartbeat_seconds and must answer within cache_local_timeout_seconds (a
    # bound that also covers the event loop's own backlog under a full load), so a stalled
    # Redis stops them within the sum of the two.
    cache_local_seconds: float = 10.0
    cache_local_heartbeat_seconds: float = 0.5
    cache_local_timeout_seconds: float = 1.0
    cache_local_max_bytes: int = 64 * 1024 * 1024  # first pages of 1,000 tenants fit
    # A cache operation waits this long for Redis; after a Redis failure, the cache and the
    # count reads skip Redis for cache_breaker_seconds instead of waiting on every request.
    cache_timeout_seconds: float = 0.5
    cache_breaker_seconds: float = 2.0
    # A generation bump after a write waits this long for Redis: longer than a read, since
    # a write can wait and a stale read cannot be taken back. A bump Redis still does not
    # take is retried until it is made (adapters/cache_generations.py).
    cache_invalidate_timeout_seconds: float = 2.0
    # /readyz: each dependency check waits this long, and a dependency that answered before
    # is reported unavailable only after this many failed checks in a row.
    readiness_timeout_seconds: float = 2.0
    readiness_failures: int = 3
    # latest.jpg: the widest image it makes, how old a frame may be before it is flagged
    # offline (X-Frame-Offline), the bytes of encoded images kept in memory, and the
    # threads that resize and encode (each one a core's worth of work under load).
    frame_max_width: int = 1920
    frame_offline_seconds: float = 10.0
    frame_cache_max_bytes: int = 64 * 1024 * 1024
    frame_encode_threads: int = 2

    @field_validator("public_notifier_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("LOOKOUT_PUBLIC_NOTIFIER_URL must be an http(s) URL")
        return value
