"""The SSRF decision over address objects: nothing here opens a connection."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest
from lookout_snapshot_worker.domain.addresses import is_allowed, refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1",  # loopback
        "10.1.2.3", "172.16.0.1", "192.168.1.10", "fc00::1", "fd12:3456::1",  # private
        "169.254.1.1", "fe80::1",  # link-local
        "169.254.169.254", "fd00:ec2::254",  # cloud metadata
        "0.0.0.0", "::",  # unspecified
        "224.0.0.1", "ff02::1",  # multicast
        "240.0.0.1", "255.255.255.255",  # reserved
        "100.64.0.1",  # carrier-grade NAT: not public
        "::ffff:10.0.0.1", "::ffff:127.0.0.1",  # IPv4-mapped internal addresses
    ],
)  # fmt: skip
def test_internal_addresses_are_refused(address: str) -> None:
    assert refusal(ip_address(address), []) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed(ip_address(address), [])


def test_allowed_networks_open_exactly_their_range() -> None:
    lan = [ip_network("192.168.1.0/24"), ip_network("127.0.0.0/8")]
    assert is_allowed(ip_address("192.168.1.77"), lan)
    assert is_allowed(ip_address("127.0.0.1"), lan)
    assert is_allowed(ip_address("::ffff:192.168.1.5"), lan)
    assert not is_allowed(ip_address("192.168.2.1"), lan)
    assert not is_allowed(ip_address("::1"), lan)


def test_metadata_addresses_stay_refused_even_inside_an_allowed_network() -> None:
    allowed = [ip_network("169.254.0.0/16"), ip_network("fd00::/8")]
    assert is_allowed(ip_address("169.254.10.10"), allowed)
    assert "metadata" in (refusal(ip_address("169.254.169.254"), allowed) or "")
    assert "metadata" in (refusal(ip_address("fd00:ec2::254"), allowed) or "")


def test_refusal_says_why() -> None:
    assert refusal(ip_address("127.0.0.1"), []) == "127.0.0.1 is a loopback address"
    assert refusal(ip_address("10.0.0.1"), []) == "10.0.0.1 is a private address"
