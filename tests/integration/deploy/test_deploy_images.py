"""Each Dockerfile's build stage, replayed here without a Docker engine: its COPY lines
build a context from the repository, its RUN lines (uv sync --locked --no-dev --package)
run against a fresh virtual environment, and the image's CMD from that environment starts
and answers /healthz against the test stack."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.unit.deploy.deploy_files import ROOT, SERVICES, build_stage, runtime_stage

PORT_SETTING = {
    "api": "LOOKOUT_API_PORT",
    "notifier": "LOOKOUT_NOTIFIER_PORT",
    "snapshot-worker": "LOOKOUT_WORKER_PORT",
    "count-aggregator": "LOOKOUT_AGGREGATOR_PORT",
}
OTHER_PACKAGES = {
    "api": "lookout_api",
    "notifier": "lookout_notifier",
    "snapshot-worker": "lookout_snapshot_worker",
    "count-aggregator": "lookout_count_aggregator",
}


def uv_dir() -> str:
    """Where uv lives: on PATH, or where scripts/install.sh put it."""
    found = shutil.which("uv") or str(ROOT / "var/tools/bin/uv")
    assert Path(found).exists(), "uv is missing: run scripts/install.sh"
    return str(Path(found).parent)


MOUNT = re.compile(r"--mount=\S+\s*")


def env_pairs(instruction: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(instruction)[1:])


def replay_build(service: str, workdir: Path, venv: Path) -> None:
    """Run the Dockerfile's build stage here: COPY from the repository into ``workdir``
    (the image's /app), ENV as given, RUN with the venv as uv's project environment."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = uv_dir() + os.pathsep + env["PATH"]
    for instruction in build_stage(ROOT / "services" / service / "Dockerfile"):
        keyword, _, rest = instruction.partition(" ")
        if keyword == "COPY" and not rest.startswith("--from="):
            *sources, destination = shlex.split(rest)
            target = workdir / destination
            for source in sources:
                origin = ROOT / source
                into = target / origin.name if destination.endswith("/") else target
                into.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, into)
        elif keyword == "ENV":
            env.update(env_pairs(instruction))
        elif keyword == "RUN":
            script = MOUNT.sub("", rest).strip()
            if script.startswith("apt-get"):
                continue  # Debian packages: scripts/install.sh put the same ones on this host
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)
            done = subprocess.run(  # the shell form, as docker runs it
                ["/bin/sh", "-c", script],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{instruction}\n{done.stderr}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_image_install_step_yields_a_service_that_answers_healthz(
    service: str, tmp_path: Path, stack: dict[str, str]
) -> None:
    workdir, venv = tmp_path / "app", tmp_path / "venv"
    workdir.mkdir()
    replay_build(service, workdir, venv)

    # Only this service and shared, no other service and no dev tools.
    site = next((venv / "lib").glob("python3.*/site-packages"))
    installed = {p.name for p in site.iterdir()}
    assert OTHER_PACKAGES[service] in installed and "lookout_shared" in installed
    assert not (set(OTHER_PACKAGES.values()) - {OTHER_PACKAGES[service]}) & installed
    assert "pytest" not in installed and "mypy" not in installed

    runtime = runtime_stage(ROOT / "services" / service / "Dockerfile")
    [cmd] = [line for line in runtime if line.startswith("CMD ")]
    command = shlex.split(cmd.removeprefix("CMD ").strip("[]").replace(",", " "))
    image_env: dict[str, str] = {}
    for line in runtime:
        if line.startswith("ENV "):
            image_env.update(env_pairs(line))
    image_env.pop("PATH")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        **image_env,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        # The image listens on every interface; here only loopback.
        "LOOKOUT_BIND_HOST": "127.0.0.1",
        PORT_SETTING[service]: str(port),
        "LOOKOUT_STORAGE_DIR": str(tmp_path / "snapshots"),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    executable = venv / "bin" / command[0]
    assert executable.exists(), f"{command[0]} is not in the environment"
    log = (tmp_path / "service.log").open("w")
    process = subprocess.Popen(
        [str(executable), *command[1:]], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        answer: httpx.Response | None = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        output = (tmp_path / "service.log").read_text()[-3000:]
        assert answer is not None, f"{service} never answered (exit {process.poll()}):\n{output}"
        assert answer.status_code == 200, output
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
