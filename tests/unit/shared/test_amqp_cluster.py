"""LOOKOUT_AMQP_URL as a list of RabbitMQ nodes."""

from __future__ import annotations

import secrets

import pytest
from lookout_shared.amqp_cluster import ClusterConnection, split_urls
from lookout_shared.settings import ServiceSettings
from pydantic import ValidationError


def test_one_url_stays_one_address() -> None:
    assert split_urls("amqp://u:p@mq:5672/v?heartbeat=4") == ["amqp://u:p@mq:5672/v?heartbeat=4"]


def test_a_comma_separated_list_gives_every_node_in_order() -> None:
    urls = " amqp://u:p@a/v , amqp://u:p@b/v,,amqp://u:p@c/v "
    assert split_urls(urls) == ["amqp://u:p@a/v", "amqp://u:p@b/v", "amqp://u:p@c/v"]


def test_a_list_with_no_address_is_refused() -> None:
    with pytest.raises(ValueError, match="names no RabbitMQ address"):
        split_urls(" , ")


def test_production_checks_the_password_of_every_listed_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strong = secrets.token_urlsafe(24)
    monkeypatch.setenv("LOOKOUT_ENVIRONMENT", "production")
    monkeypatch.setenv("LOOKOUT_JWT_SECRET", secrets.token_hex(32))
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", f"postgresql://app:{secrets.token_hex(16)}@db/x")
    monkeypatch.setenv("LOOKOUT_AMQP_URL", f"amqp://app:{strong}@a/v,amqp://app:guest@b/v")
    with pytest.raises(ValidationError, match="LOOKOUT_AMQP_URL"):
        ServiceSettings()
    monkeypatch.setenv("LOOKOUT_AMQP_URL", f"amqp://app:{strong}@a/v,amqp://app:{strong}@b/v")
    assert ServiceSettings().environment == "production"


async def test_each_new_connection_attempt_goes_to_the_next_node() -> None:
    urls = ["amqp://u:p@127.0.0.1:1/v", "amqp://u:p@127.0.0.1:2/v", "amqp://u:p@127.0.0.1:3/v"]
    connection = ClusterConnection(urls, first=1)
    ports = []
    for _ in range(4):
        connection.transport = None  # what the robust connection does before each attempt
        ports.append(connection.url.port)
    assert ports == [2, 3, 1, 2]
