"""The api's settings (``LOOKOUT_*`` variables) on top of the shared ones."""

from __future__ import annotations

from lookout_shared.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    service_name: str = "api"
    access_token_minutes: int = 15
    # Where clients reach the api; used to build absolute links such as a job's status_url.
    public_url: str = "http://127.0.0.1:8000"
    # How long a process trusts an API key lookup: the bound on revocation.
    api_key_cache_seconds: float = 30.0
    # Login rate limits: every attempt per client IP, failed attempts per e-mail.
    login_ip_limit: int = 30
    login_ip_window_seconds: int = 60
    login_email_failure_limit: int = 10
    login_email_window_seconds: int = 300
    # Larger request bodies answer 413 (a full bulk request of 500 streams fits).
    max_body_bytes: int = 2 * 1024 * 1024
    # A list total waits this long for Redis before counting in SQL instead.
    counts_timeout_seconds: float = 0.25
