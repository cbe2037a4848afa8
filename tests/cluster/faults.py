"""The cluster profile's fault controls (``scripts/stack.sh kill-node|start-node|pause-node|
resume-node N``) and the RabbitMQ facts the fault tests look up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
NODES = (1, 2, 3)


def stack(*args: str) -> str:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/stack.sh"), *args],
        env=os.environ,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def node_at(address: str) -> int:
    """The node (1..3) listening on ``host:port`` (:attr:`Broker.node`)."""
    port = int(address.rsplit(":", 1)[1])
    urls = os.environ["LOOKOUT_AMQP_URL"].split(",")
    for number, url in zip(NODES, urls, strict=True):
        if URL(url).port == port:
            return number
    raise ValueError(f"no cluster node listens on {address}")


def rabbit_ctl(node: int, tool: str, *args: str) -> str:
    """``rabbitmqctl``/``rabbitmq-queues`` run against ``node``."""
    return stack("ctl", str(node), tool, *args)


def queue_leaders(via: int) -> dict[str, int]:
    """Each quorum queue's leader node, asked of node ``via``."""
    out = rabbit_ctl(
        via,
        "rabbitmqctl",
        "list_queues",
        "-q",
        "-p",
        vhost(),
        "--no-table-headers",
        "name",
        "leader",
    )
    leaders = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("lookout-cluster-"):
            leaders[parts[0]] = int(parts[1].split("@")[0].rsplit("-", 1)[1])
    return leaders


def vhost() -> str:
    return URL(os.environ["LOOKOUT_AMQP_URL"].split(",")[0]).path.lstrip("/")
