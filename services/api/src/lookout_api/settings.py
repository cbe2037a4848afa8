"""The api's settings (``LOOKOUT_*`` variables) on top of the shared ones."""

from __future__ import annotations

from lookout_shared.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    service_name: str = "api"
    access_token_minutes: int = 15
    # Where clients reach the api; used to build absolute links such as a job's status_url.
    public_url: str = "http://127.0.0.1:8000"
