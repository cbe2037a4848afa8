"""Settings every service shares; each service subclasses it and builds it in ``main``.

Values come from ``LOOKOUT_*`` environment variables. The defaults suit the local stack
(`make run`) and nothing else: outside ``development`` and ``test`` the settings refuse to
load with a default secret or password, so a forgotten variable fails loudly at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "lookout-development-secret-do-not-use-in-production"  # noqa: S105
_DEV_PASSWORD = "lookout:lookout@"  # noqa: S105


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOOKOUT_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    service_name: str = "lookout"
    database_url: SecretStr = SecretStr("postgresql://lookout:lookout@127.0.0.1:54320/lookout")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:63790/0")
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

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        problems = []
        secret = self.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET or len(secret) < 32:
            problems.append("LOOKOUT_JWT_SECRET must be set to a random value of 32+ characters")
        for name in ("database_url", "amqp_url"):
            if _DEV_PASSWORD in getattr(self, name).get_secret_value():
                problems.append(f"LOOKOUT_{name.upper()} still carries the development password")
        if problems:
            raise ValueError("; ".join(problems))
        return self
