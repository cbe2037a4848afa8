"""The four services as separate OS processes on the test stack, driven from outside."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PASSWORD = "e2e-superuser-password"
SERVICES = ("api", "notifier", "snapshot-worker", "count-aggregator")


def free_port() -> int:
    """A port nothing listens on now: a running `make run` or another stack is never hit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORTS = {service: free_port() for service in SERVICES}


@dataclass
class System:
    env: dict[str, str]
    logs: Path
    media: Path
    otlp: OtlpReceiver
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{PORTS[service]}"

    def log(self, service: str) -> str:
        """Everything ``service`` wrote to stdout and stderr in this run."""
        return (self.logs / f"{service}.log").read_text(errors="replace")

    def start(self, service: str) -> None:
        log = (self.logs / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            [str(BIN / f"lookout-{service}")],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def wait_ready(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes[service]
            if proc.poll() is not None:
                raise AssertionError(f"{service} exited with {proc.returncode}; see {self.logs}")
            try:
                if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{service} not ready within {timeout}s; see {self.logs}")

    def stop(self, service: str) -> int:
        proc = self.processes.pop(service)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{service} ignored SIGTERM") from None

    def stack(self, action: str) -> None:
        subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], env=self.env, check=True)


@pytest.fixture(scope="session")
def system(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    base = tmp_path_factory.mktemp("e2e")
    media, logs = base / "media", Path(stack["LOOKOUT_STORAGE_DIR"]).parent / "e2e-logs"
    media.mkdir()
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):  # the log scan reads this run's lines only
        old.unlink()
    otlp = OtlpReceiver()
    otlp.start()
    env = {
        **os.environ,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        "LOOKOUT_MEDIA_DIR": str(media),
        "LOOKOUT_STORAGE_DIR": str(base / "snapshots"),
        "LOOKOUT_API_PORT": str(PORTS["api"]),
        "LOOKOUT_NOTIFIER_PORT": str(PORTS["notifier"]),
        "LOOKOUT_WORKER_PORT": str(PORTS["snapshot-worker"]),
        "LOOKOUT_AGGREGATOR_PORT": str(PORTS["count-aggregator"]),
        "LOOKOUT_PUBLIC_URL": f"http://127.0.0.1:{PORTS['api']}",
        # The operator page, served by the api, reaches the notifier on its own port.
        "LOOKOUT_PUBLIC_NOTIFIER_URL": f"http://127.0.0.1:{PORTS['notifier']}",
        "LOOKOUT_NOTIFIER_ALLOWED_ORIGINS": json.dumps([f"http://127.0.0.1:{PORTS['api']}"]),
        "LOOKOUT_SUPERUSER_PASSWORD": PASSWORD,
        # Everything is logged, so the secret scan of the logs sees all there is.
        "LOOKOUT_LOG_LEVEL": "DEBUG",
        # Every test logs in from 127.0.0.1, the browser tests many times a minute: the
        # per-address login limit is tested in tests/integration/api/test_api_auth.py.
        "LOOKOUT_LOGIN_IP_LIMIT": "100000",
        # Loopback cameras (a closed port) are reachable; nothing else is.
        "LOOKOUT_ALLOWED_NETWORKS": "127.0.0.1/32",
        # Every service exports its spans to the receiver in this process, quickly.
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",  # every request's trace, to check
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    system = System(env=env, logs=logs, media=media, otlp=otlp)
    try:
        for service in PORTS:
            system.start(service)
        for service in PORTS:
            system.wait_ready(service)
        yield system
    finally:
        for service in list(system.processes):
            system.stop(service)
        otlp.stop()
