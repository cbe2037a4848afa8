"""Unsafe defaults never reach production."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from lookout_shared.settings import DEV_JWT_SECRET, ServiceSettings
from pydantic import ValidationError

STRONG_URLS = {
    "LOOKOUT_DATABASE_URL": f"postgresql://app:{secrets.token_hex(16)}@db/lookout",
    "LOOKOUT_AMQP_URL": f"amqp://app:{secrets.token_urlsafe(24)}@mq/lookout",
}


def production(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    monkeypatch.setenv("LOOKOUT_ENVIRONMENT", "production")
    for name, value in (STRONG_URLS | env).items():
        monkeypatch.setenv(name, value)


def test_production_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKOUT_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="LOOKOUT_JWT_SECRET") as raised:
        ServiceSettings()
    assert "LOOKOUT_DATABASE_URL" in str(raised.value) and "LOOKOUT_AMQP_URL" in str(raised.value)
    production(monkeypatch, LOOKOUT_JWT_SECRET=secrets.token_hex(32))
    assert ServiceSettings().environment == "production"


WEAK_JWT_SECRETS = {
    "the development value": DEV_JWT_SECRET,
    "a placeholder": "CHANGE-ME-openssl-rand-hex-32-and-some-more-text",
    "too short": secrets.token_hex(15),
    "one character": "x" * 40,
    "a repeated word": "Password123" * 4,
    "few distinct characters": "abababababcabababababcabababcabababababc",
    "a run": "abcdefghijklmnopqrstuvwxyz0123456789",
    "padding": "a" * 64 + "0123456789",
}


@pytest.mark.parametrize("secret", WEAK_JWT_SECRETS.values(), ids=WEAK_JWT_SECRETS.keys())
def test_production_refuses_weak_jwt_secrets(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    production(monkeypatch, LOOKOUT_JWT_SECRET=secret)
    with pytest.raises(ValidationError, match="LOOKOUT_JWT_SECRET is too weak") as raised:
        ServiceSettings()
    assert secret not in str(raised.value)
    with pytest.raises(ValidationError) as raised:  # given directly, too
        ServiceSettings(jwt_secret=secret)
    assert secret not in str(raised.value) and secret not in repr(raised.value)


@pytest.mark.parametrize("make", [secrets.token_hex, secrets.token_urlsafe])
def test_production_accepts_random_secrets(monkeypatch: pytest.MonkeyPatch, make: Any) -> None:
    for _ in range(200):
        production(monkeypatch, LOOKOUT_JWT_SECRET=make(32))
        assert ServiceSettings().environment == "production"


@pytest.mark.parametrize(
    "password", ["lookout", "CHANGE-ME", "short-pass", "aaaaaaaaaaaaaaaaaaaa", "1234567890123456"]
)
def test_production_refuses_weak_server_passwords(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    production(
        monkeypatch,
        LOOKOUT_JWT_SECRET=secrets.token_hex(32),
        LOOKOUT_DATABASE_URL=f"postgresql://lookout:{password}@db:5432/lookout",
    )
    with pytest.raises(ValidationError, match="password in LOOKOUT_DATABASE_URL") as raised:
        ServiceSettings()
    assert f":{password}@" not in str(raised.value)
