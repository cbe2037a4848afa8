"""Notifier settings: the shared ones plus the WebSocket limits, from ``LOOKOUT_*`` variables."""

from __future__ import annotations

from lookout_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    # Browser origins allowed to open /ws; a client that sends no Origin (not a browser) is
    # always allowed, because Origin only protects against cross-site browser pages.
    notifier_allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8000", "http://127.0.0.1:8000"]
    )
    send_queue_size: int = Field(default=256, ge=1)
    # Bytes a connection may have unsent: its queued live frames plus what the transport
    # still holds for the peer (WebSocket). Above it: close 1013, so a client that stopped
    # reading is dropped by this bound long before the heartbeat notices.
    max_unsent_bytes: int = Field(default=1_048_576, ge=4096)
    history_size: int = Field(default=500, ge=1)
    history_ttl_seconds: int = Field(default=300, ge=1)
    # Every heartbeat_seconds each WebSocket is pinged (an SSE stream idle that long gets a
    # comment); a WebSocket peer silent (no pong, no frame) past idle_timeout_seconds is
    # closed with 1011, within one more heartbeat.
    heartbeat_seconds: float = Field(default=20, gt=0)
    idle_timeout_seconds: float = Field(default=60, gt=0)
    max_frame_bytes: int = Field(default=16384, ge=256)
    # A subscription to a stream or job nobody has named yet waits this long for the event
    # that names it (it may still be in flight after the REST write), then is refused.
    owner_wait_seconds: float = Field(default=2.0, ge=0)
    # Open connections (WebSocket and SSE) per user, counted across every instance; each
    # slot is a lease in Redis renewed every lease/3, so a crashed instance's slots lapse.
    max_connections_per_user: int = Field(default=16, ge=1)
    connection_lease_seconds: float = Field(default=30, gt=0)
    # Client frames per second per connection (token bucket); above it: close 1008.
    client_rate_per_second: float = Field(default=20, gt=0)
    client_burst: int = Field(default=40, ge=1)
    # Rooms one SSE request may ask for (each adds to every event id).
    sse_max_rooms: int = Field(default=16, ge=1)
    event_prefetch: int = Field(default=64, ge=1)
    # Webhooks (lookout_notifier.webhooks): each delivery gets webhook_attempts tries with
    # exponential backoff and jitter between retry_initial and retry_max seconds; after
    # circuit_threshold consecutive failures an endpoint is held circuit_open_seconds.
    webhooks_enabled: bool = True
    webhook_prefetch: int = Field(default=32, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_attempts: int = Field(default=6, ge=1)
    webhook_retry_initial_seconds: float = Field(default=1.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=60.0, gt=0)
    webhook_circuit_threshold: int = Field(default=5, ge=1)
    webhook_circuit_open_seconds: float = Field(default=60.0, gt=0)
    webhook_replay_poll_seconds: float = Field(default=5.0, gt=0)
    # A tenant's hooks stay cached this long while unused (changes clear them at once:
    # adapters/webhooks_db.py); 0 looks them up in Postgres for every event.
    webhook_cache_seconds: float = Field(default=300.0, ge=0)
    # The Home Assistant MQTT bridge (lookout_notifier.adapters.mqtt_bridge), off unless set, e.g.
    # mqtt://user:pass@broker:1883; topics go under <mqtt_prefix>/<tenant id>/.
    mqtt_url: SecretStr | None = None
    mqtt_prefix: str = "lookout"
    mqtt_discovery_prefix: str = "homeassistant"
    # How long the signed image URL of a new snapshot (the snapshot_url topic) opens it.
    mqtt_image_url_ttl_seconds: int = Field(default=86_400, ge=60, le=86_400)

    @model_validator(mode="after")
    def _timeout_after_heartbeat(self) -> NotifierSettings:
        if self.idle_timeout_seconds <= self.heartbeat_seconds:
            raise ValueError("LOOKOUT_IDLE_TIMEOUT_SECONDS must exceed LOOKOUT_HEARTBEAT_SECONDS")
        return self
