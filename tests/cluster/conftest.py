"""Two replicas of every service as OS processes on the three-node cluster stack
(``LOOKOUT_STACK=cluster``, ``make test-cluster``): api, snapshot-worker, count-aggregator
and notifier, each replica on its own port and given the whole broker address list."""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PASSWORD = "cluster-superuser-password"
SERVICES = {
    "api": "LOOKOUT_API_PORT",
    "notifier": "LOOKOUT_NOTIFIER_PORT",
    "snapshot-worker": "LOOKOUT_WORKER_PORT",
    "count-aggregator": "LOOKOUT_AGGREGATOR_PORT",
}
REPLICAS = ("a", "b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replicas:
    """The service processes; a replica is named ``<service>-<a|b>``."""

    env: dict[str, str]
    logs: Path
    media: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, replica: str) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}"

    def start(self, replica: str) -> None:
        service = replica.rsplit("-", 1)[0]
        env = {
            **self.env,
            SERVICES[service]: str(self.ports[replica]),
            "LOOKOUT_SERVICE_NAME": replica,
        }
        log = (self.logs / f"{replica}.log").open("ab")
        self.processes[replica] = subprocess.Popen(
            [str(BIN / f"lookout-{service}")],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def wait_ready(self, replica: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes[replica]
            if proc.poll() is not None:
                raise AssertionError(f"{replica} exited with {proc.returncode}; see {self.logs}")
            try:
                if httpx.get(f"{self.url(replica)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{replica} not ready within {timeout}s; see {self.logs}")

    def kill(self, replica: str) -> None:
        """kill -9: no drain, no goodbye; its unacked deliveries go back to the queue."""
        proc = self.processes.pop(replica)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, replica: str) -> None:
        proc = self.processes.pop(replica)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session", autouse=True)
def cluster_stack(stack: dict[str, str]) -> None:
    """This tier needs the three-node stack; on another one it fails loudly, never skips."""
    if len(stack["LOOKOUT_AMQP_URL"].split(",")) != 3:
        raise AssertionError("tests/cluster runs on LOOKOUT_STACK=cluster: `make test-cluster`")


@pytest.fixture(scope="session")
def replicas(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    base = tmp_path_factory.mktemp("cluster")
    media, logs = base / "media", Path(stack["LOOKOUT_STORAGE_DIR"]).parent / "cluster-logs"
    media.mkdir()
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    ports = {f"{s}-{r}": free_port() for s in SERVICES for r in REPLICAS}
    env = {
        **os.environ,
        **stack,
        "LOOKOUT_ENVIRONMENT": "test",
        "LOOKOUT_MEDIA_DIR": str(media),
        "LOOKOUT_STORAGE_DIR": str(base / "snapshots"),
        "LOOKOUT_SUPERUSER_PASSWORD": PASSWORD,
        "LOOKOUT_ALLOWED_NETWORKS": "127.0.0.1/32",
        # Every replica reaches every other service's first replica where it needs one.
        "LOOKOUT_API_PORT": str(ports["api-a"]),
        "LOOKOUT_NOTIFIER_PORT": str(ports["notifier-a"]),
        "LOOKOUT_WORKER_PORT": str(ports["snapshot-worker-a"]),
        "LOOKOUT_AGGREGATOR_PORT": str(ports["count-aggregator-a"]),
        "LOOKOUT_PUBLIC_URL": f"http://127.0.0.1:{ports['api-a']}",
    }
    system = Replicas(env=env, logs=logs, media=media, ports=ports)
    try:
        for replica in ports:
            system.start(replica)
        for replica in ports:
            system.wait_ready(replica)
        yield system
    finally:
        for replica in list(system.processes):
            system.stop(replica)
