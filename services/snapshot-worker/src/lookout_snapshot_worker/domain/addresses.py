"""Which network addresses ffmpeg may connect to (the SSRF guard's decision).

Stream URLs come from users, so without this a URL could make the worker fetch from the
cloud metadata service, the database, or anything else on its private network. Operators
list camera networks that may be reached anyway in ``allowed_networks``; the metadata
addresses are refused even then, as no camera lives there.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

METADATA_ADDRESSES: frozenset[Address] = frozenset(
    {ip_address("169.254.169.254"), ip_address("fd00:ec2::254")}
)


def refusal(address: Address, allowed: Iterable[Network]) -> str | None:
    """Why ``address`` may not be reached, or None when it may."""
    # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it carries.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if any(address.version == net.version and address in net for net in allowed):
        return None
    for flag in ("loopback", "private", "link_local", "reserved", "multicast", "unspecified"):
        if getattr(address, f"is_{flag}"):
            return f"{address} is a {flag.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def is_allowed(address: Address, allowed: Iterable[Network]) -> bool:
    return refusal(address, allowed) is None
