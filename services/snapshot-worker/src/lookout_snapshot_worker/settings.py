"""Snapshot-worker settings (``LOOKOUT_*`` environment variables)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any

from lookout_shared.settings import ServiceSettings
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

Network = IPv4Network | IPv6Network


class WorkerSettings(ServiceSettings):
    service_name: str = "snapshot-worker"
    # Unacked commands per consumer; a few ahead of the ffmpeg bound keeps it busy.
    worker_prefetch: int = Field(default=4, ge=1)
    # At most this many ffmpeg/ffprobe processes at once, whatever the prefetch.
    worker_concurrency: int = Field(default=2, ge=1)
    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    ffmpeg_timeout_seconds: float = Field(default=20.0, gt=0)
    snapshot_max_width: int = Field(default=1920, ge=16)
    capture_attempts: int = Field(default=3, ge=1)
    # Base of the exponential, jittered backoff between attempts.
    capture_backoff_seconds: float = Field(default=0.5, ge=0)
    # Private or loopback networks that may still be reached (e.g. a camera LAN).
    # Accepts a JSON list or a comma-separated string of CIDRs.
    allowed_networks: Annotated[list[Network], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [part for part in (p.strip() for p in text.split(",")) if part]
        if isinstance(value, list):
            return [ip_network(v, strict=False) if isinstance(v, str) else v for v in value]
        return value
