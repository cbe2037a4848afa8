"""The egress shim (C, loaded into ffmpeg) and the URL check (Python) decide alike.

The shim's source is compiled here into a small program that feeds addresses to its own
decision function and prints it: nothing connects. Both sides read the policy the worker
encodes, and must agree on every address of the table, at both edges of each range and just
outside them, in their IPv4-mapped, NAT64 and 6to4 forms, and on ports.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from ipaddress import IPv6Address, ip_address, ip_network
from pathlib import Path

import pytest
from lookout_shared.addresses import Address, EgressPolicy
from lookout_shared.special_addresses import METADATA, REFUSED
from lookout_snapshot_worker.adapters.egress import POLICY_VARIABLE

from tests.unit.shared.test_addresses import INTERNAL, PUBLIC, mapped, nat64, six_to_four

SOURCE = Path(__file__).parents[3] / "services/snapshot-worker/egress/lookout_egress.c"
HARNESS = """
#include "%s"
int main(void) {
    char text[64];
    int port;
    load_policy();
    while (scanf("%%63s %%d", text, &port) == 2) {
        unsigned char addr[16];
        int family = strchr(text, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(family, text, addr) != 1) return 2;
        puts(policy_ok && allowed(family, addr, port, 0) ? "allow" : "deny");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("egress")
    (folder / "judge.c").write_text(HARNESS % SOURCE)
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(folder / "judge"), str(folder / "judge.c"),
         "-ldl", "-pthread"],
        check=True,
    )  # fmt: skip
    return folder / "judge"


def shim_decisions(
    judge: Path, policy: EgressPolicy | None, cases: list[tuple[Address, int]]
) -> list[bool]:
    env = {POLICY_VARIABLE: policy.encode()} if policy is not None else {}
    lines = "".join(f"{address} {port}\n" for address, port in cases)
    out = subprocess.run(
        [str(judge)], input=lines, env=env, capture_output=True, text=True, check=True
    )
    return [line == "allow" for line in out.stdout.splitlines()]


def edges() -> Iterator[Address]:
    for network in [n for n, _ in REFUSED] + list(METADATA):
        net = ip_network(network)
        yield net.network_address
        yield net.broadcast_address
        if int(net.network_address) > 0:
            yield net.network_address - 1
        if int(net.broadcast_address) < 2**net.max_prefixlen - 1:
            yield net.broadcast_address + 1
        if net.version == 4:
            for form in (mapped, nat64, six_to_four):
                yield ip_address(form(str(net.network_address)))
                yield ip_address(form(str(net.broadcast_address)))


POLICIES = {
    "default": EgressPolicy.build([]),
    "camera LAN and a resolver": EgressPolicy.build(
        [ip_network("192.168.1.0/24"), ip_network("127.0.0.1/32"), ip_network("fd00::/8")],
        [ip_address("10.255.255.53"), ip_address("fe80::53")],
    ),
}


@pytest.mark.parametrize("name", POLICIES)
def test_the_shim_and_the_url_check_decide_alike(judge: Path, name: str) -> None:
    policy = POLICIES[name]
    addresses = [*edges(), *(ip_address(a) for a in INTERNAL + PUBLIC)]
    addresses += [ip_address(a) for a in ("10.255.255.53", "fe80::53", "192.168.1.9", "fd00::9")]
    cases = [(address, port) for address in addresses for port in (53, 554)]
    python = [policy.refusal(address, port) is None for address, port in cases]
    assert shim_decisions(judge, policy, cases) == python
    assert any(python) and not all(python)


def test_the_shim_refuses_everything_without_a_valid_policy(judge: Path) -> None:
    cases: list[tuple[Address, int]] = [
        (ip_address("8.8.8.8"), 80),
        (IPv6Address("2606:4700::1111"), 443),
    ]
    assert shim_decisions(judge, None, cases) == [False, False]
    valid = EgressPolicy.build([]).encode()
    for bad in (
        "allow 8.8.8.8",
        "permit 8.8.8.0/24",
        "allow 8.8.8.0/33",
        "embed 10.0.0.0/8 at=8",
        "allow 8.8.8.0/24 port=99999",
        "allow 8.8.8.0/24 extra",
    ):
        out = subprocess.run(
            [str(judge)], input="8.8.8.8 80\n", capture_output=True, text=True, check=True,
            env={POLICY_VARIABLE: f"{valid};{bad}"},
        )  # fmt: skip
        assert out.stdout.split() == ["deny"], bad
