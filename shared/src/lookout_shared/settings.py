"""Settings every service shares; each service subclasses it and builds it in ``main``.

Values come from ``LOOKOUT_*`` environment variables. The defaults suit the local stack
(`make run`) and nothing else: outside ``development`` and ``test`` the settings refuse to
load with a weak JWT secret (the development value, a placeholder, under 32 bytes, a
repeated pattern or little entropy: see :mod:`lookout_shared.weak_secrets`) or a weak
password in a server URL (the same rules from 16 bytes), so a forgotten variable fails
loudly at start-up. The error names the setting and never shows the value.
"""

from __future__ import annotations

import json
from ipaddress import ip_network
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lookout_shared.addresses import Network
from lookout_shared.signed_urls import derive_key
from lookout_shared.weak_secrets import DEV_JWT_SECRET, url_password, weakness

__all__ = ["DEV_JWT_SECRET", "ServiceSettings"]
JWT_SECRET_MIN_BYTES = 32
PASSWORD_MIN_BYTES = 16


class ServiceSettings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise print every value, secrets too.
    model_config = SettingsConfigDict(
        env_prefix="LOOKOUT_", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"
    service_name: str = "lookout"
    database_url: SecretStr = SecretStr("postgresql://lookout:lookout@127.0.0.1:54320/lookout")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:63790/0")
    # One RabbitMQ URL, or the nodes of a cluster comma-separated (lookout_shared.amqp_cluster).
    amqp_url: SecretStr = SecretStr("amqp://lookout:lookout@127.0.0.1:56720/lookout")
    redis_prefix: str = "lookout:"
    db_pool_min: int = 2
    db_pool_max: int = 10
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "lookout"
    jwt_audience: str = "lookout"
    log_level: str = "INFO"
    # Where ffmpeg may read local files (file: stream URLs); unset means never.
    media_dir: str | None = None
    storage_dir: str = "var/dev/snapshots"
    # Each service listens on its own port (HTTP API, WebSocket, or health and metrics).
    bind_host: str = "127.0.0.1"
    api_port: int = 8000
    notifier_port: int = 8001
    worker_port: int = 8002
    aggregator_port: int = 8003
    # Private or loopback networks that user-given URLs may still reach (a camera LAN for
    # stream URLs, an internal receiver for webhooks); see lookout_shared.addresses.
    # Accepts a JSON list or a comma-separated string of CIDRs.
    allowed_networks: Annotated[list[Network], NoDecode] = Field(default_factory=list)
    # The key webhook signing secrets are encrypted with at rest (lookout_shared.sealed);
    # unset: derived from the JWT secret (rotating that then voids the stored secrets).
    webhook_secrets_key: SecretStr | None = None
    # Where clients reach the api: the base of absolute links (a job's status_url, signed
    # image URLs the api and the notifier's MQTT bridge hand out).
    public_url: str = "http://127.0.0.1:8000"
    # The HMAC key of signed image URLs (lookout_shared.signed_urls; 32+ random bytes in
    # production). Unset: a key derived from LOOKOUT_JWT_SECRET; setting one lets it rotate
    # apart from the tokens (rotating either voids every signed URL handed out).
    url_signing_key: SecretStr | None = None

    @field_validator("webhook_secrets_key", "url_signing_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

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

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        problems = []
        why = weakness(self.jwt_secret.get_secret_value(), JWT_SECRET_MIN_BYTES)
        if why is not None:
            problems.append(
                f"LOOKOUT_JWT_SECRET is too weak for production: {why}; "
                "set a random value, e.g. `openssl rand -hex 32`"
            )
        for name in ("webhook_secrets_key", "url_signing_key"):
            key = getattr(self, name)
            why = None if key is None else weakness(key.get_secret_value(), JWT_SECRET_MIN_BYTES)
            if why is not None:
                problems.append(f"LOOKOUT_{name.upper()} is too weak for production: {why}")
        for name in ("database_url", "redis_url", "amqp_url"):
            # LOOKOUT_AMQP_URL may list several nodes, comma-separated: check each one.
            for url in getattr(self, name).get_secret_value().split(","):
                password = url_password(url.strip())
                why = None if password is None else weakness(password, PASSWORD_MIN_BYTES)
                if why is not None:
                    problems.append(f"the password in LOOKOUT_{name.upper()} is too weak: {why}")
                    break
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def signing_key(self) -> bytes:
        """The key signed image URLs are made and checked with."""
        secret = self.url_signing_key or self.jwt_secret
        return derive_key(secret.get_secret_value())
