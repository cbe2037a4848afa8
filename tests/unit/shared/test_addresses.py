"""The SSRF decision over address objects: nothing here opens a connection."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from lookout_shared.addresses import EgressPolicy
from lookout_shared.special_addresses import REFUSED

DEFAULT = EgressPolicy.build([])


def mapped(v4: str) -> str:
    return str(IPv6Address(f"::ffff:{v4}"))


def nat64(v4: str) -> str:
    return str(IPv6Address(f"64:ff9b::{v4}"))


def six_to_four(v4: str) -> str:
    return str(IPv6Address((0x2002 << 112) | (int(IPv4Address(v4)) << 80) | 1))


# One address inside each range of the IANA special-purpose registries (and more).
INTERNAL = [
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.8.9.10", "169.254.1.1", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1",
    "192.31.196.1", "192.52.193.1", "192.88.99.1", "192.168.1.10", "192.175.48.1",
    "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::10.0.0.1",  # IPv4-compatible (deprecated): outside 2000::/3
    "64:ff9b:1::a00:1", "100::1", "2001::1", "2001:0:4136:e378::1",  # Teredo
    "2001:2::1", "2001:db8::1", "2620:4f:8000::1", "3fff::1", "5f00::1", "fc00::1",
    "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1", "4000::1", "8000::1",
    # IPv4 in IPv6 clothes: mapped, NAT64 and 6to4 forms of internal IPv4 addresses.
    mapped("10.0.0.1"), mapped("127.0.0.1"), mapped("169.254.169.254"), mapped("0.0.0.0"),
    nat64("10.0.0.1"), nat64("192.168.0.1"), nat64("127.0.0.1"), nat64("169.254.169.254"),
    six_to_four("10.0.0.1"), six_to_four("172.16.5.4"), six_to_four("127.0.0.1"),
    six_to_four("192.168.1.1"),
]  # fmt: skip
PUBLIC = [
    "8.8.8.8", "93.184.216.34", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
    "172.32.0.0", "192.0.1.255", "198.17.255.255", "198.20.0.0", "223.255.255.255",
    "2606:4700::1111", "2a00:1450:4001::1", mapped("8.8.8.8"), nat64("8.8.8.8"),
    six_to_four("8.8.8.8"),
]  # fmt: skip


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address: str) -> None:
    assert DEFAULT.refusal(ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.refusal(ip_address(address)) is None


@pytest.mark.parametrize(("network", "label"), REFUSED)
def test_every_special_purpose_range_is_refused_edge_to_edge(network: str, label: str) -> None:
    net = ip_network(network)
    for address in (net.network_address, net.broadcast_address):
        assert DEFAULT.refusal(address) is not None, address


def test_allowed_networks_open_exactly_their_range() -> None:
    lan = EgressPolicy.build([ip_network("192.168.1.0/24"), ip_network("127.0.0.1/32")])
    assert lan.refusal(ip_address("192.168.1.77")) is None
    assert lan.refusal(ip_address("127.0.0.1")) is None
    assert lan.refusal(ip_address(mapped("192.168.1.5"))) is None
    assert lan.refusal(ip_address(nat64("192.168.1.5"))) is None
    assert lan.refusal(ip_address("192.168.2.1")) is not None
    assert lan.refusal(ip_address("127.0.0.2")) is not None
    assert lan.refusal(ip_address("::1")) is not None


def test_metadata_addresses_stay_refused_even_inside_an_allowed_network() -> None:
    policy = EgressPolicy.build(
        [ip_network("169.254.0.0/16"), ip_network("fd00::/8"), ip_network("100.64.0.0/10")]
    )
    assert policy.refusal(ip_address("169.254.10.10")) is None
    for address in (
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        mapped("169.254.169.254"),
    ):
        assert "metadata" in (policy.refusal(ip_address(address)) or ""), address


def test_name_servers_are_reachable_on_port_53_only() -> None:
    policy = EgressPolicy.build([], [ip_address("10.255.255.53")])
    assert policy.refusal(ip_address("10.255.255.53"), 53) is None
    assert policy.refusal(ip_address("10.255.255.53"), 80) is not None
    assert policy.refusal(ip_address("10.255.255.53")) is not None


def test_refusal_says_why() -> None:
    assert (
        DEFAULT.refusal(ip_address("127.0.0.1")) == "127.0.0.1 is a loopback address (127.0.0.0/8)"
    )
    assert DEFAULT.refusal(ip_address(nat64("10.0.0.1"))) == (
        "64:ff9b::a00:1 is the NAT64 form of 10.0.0.1; "
        "10.0.0.1 is a private-use address (10.0.0.0/8)"
    )


def test_the_encoded_policy_lists_every_rule_in_order() -> None:
    policy = EgressPolicy.build([ip_network("127.0.0.1/32")], [ip_address("10.0.0.53")])
    encoded = policy.encode().split(";")
    assert len(encoded) == len(policy.rules)
    assert encoded[:3] == [
        "deny 169.254.169.254/32",
        "deny 100.100.100.200/32",
        "deny fd00:ec2::254/128",
    ]
    assert encoded[3:6] == [
        "allow 127.0.0.1/32",
        "allow 10.0.0.53/32 port=53",
        "embed ::ffff:0:0/96 at=96",
    ]
    assert encoded[-1] == "deny 8000::/1"
