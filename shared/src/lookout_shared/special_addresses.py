"""The address table ffmpeg may never reach: IANA's special-purpose address registries.

Rows follow https://www.iana.org/assignments/iana-ipv4-special-registry and
iana-ipv6-special-registry. Every row is refused, including the few IANA marks globally
reachable (AS112, AMT, ORCHIDv2...): no camera lives there. For IPv6 everything outside
2000::/3, the only space allocated as global unicast, is refused too (the last rows).

Some IPv6 addresses carry an IPv4 address that is what they really reach: IPv4-mapped
(a v6 socket connecting to ::ffff:10.0.0.1 reaches 10.0.0.1), NAT64 (the translator
forwards to the embedded address) and 6to4 (the embedded address is the tunnel's end).
Those are judged by the IPv4 address they carry; see ``EMBEDDED_IPV4``.

The first matching row names the reason, so narrower rows come before wider ones.
"""

from __future__ import annotations

# (network, what it is)
REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private-use address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private-use address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.31.196.0/24", "an AS112 address"),
    ("192.52.193.0/24", "an AMT address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", "a private-use address"),
    ("192.175.48.0/24", "an AS112 address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),  # includes 255.255.255.255 (limited broadcast)
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a local-use IPv4/IPv6 translation address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol assignment"),  # includes Teredo, 2001::/32
    ("2001:db8::/32", "a documentation address"),
    ("2620:4f:8000::/48", "an AS112 address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "a segment-routing address"),
    ("fc00::/7", "a unique-local address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("::/3", "not a global unicast address"),
    ("4000::/2", "not a global unicast address"),
    ("8000::/1", "not a global unicast address"),
)

# (network, bit offset of the 32-bit IPv4 address inside it, what it is)
EMBEDDED_IPV4: tuple[tuple[str, int, str], ...] = (
    ("::ffff:0:0/96", 96, "IPv4-mapped"),
    ("64:ff9b::/96", 96, "NAT64"),
    ("2002::/16", 16, "6to4"),
)

# Cloud metadata services (AWS, GCP, Azure, Oracle; Alibaba; AWS over IPv6): refused even
# inside an allowed network, as no camera lives there.
METADATA: tuple[str, ...] = ("169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128")
