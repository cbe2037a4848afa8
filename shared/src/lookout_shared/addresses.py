"""Which network addresses a service may connect to on a user's behalf (the SSRF guard's
decision): ffmpeg in the snapshot worker, webhook deliveries in the notifier.

Stream and webhook URLs come from users, so without this a URL could make a service fetch
from the cloud metadata service, the database, or anything else on its private network. Operators
list camera networks that may be reached anyway in ``allowed_networks``; the metadata
addresses are refused even then, as no camera lives there.

The decision is one ordered list of rules, first match wins. The worker's URL check judges
the addresses a stream's host resolves to with it, and the same list, encoded by
``EgressPolicy.encode``, is what the connect() shim loaded into ffmpeg judges every socket
address with (the worker's adapters/egress.py). The api judges a webhook URL with it at
creation, the notifier every address it delivers to. Both read this one list, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Literal

from lookout_shared.special_addresses import EMBEDDED_IPV4, METADATA, REFUSED

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Action = Literal["deny", "allow", "embed"]


@dataclass(frozen=True)
class Rule:
    """``deny``/``allow`` decide; ``embed`` judges the IPv4 address found at bit ``at``."""

    action: Action
    network: Network
    label: str
    port: int | None = None  # None: every port
    at: int = 0

    def matches(self, address: Address, port: int | None) -> bool:
        if address.version != self.network.version or address not in self.network:
            return False
        return self.port is None or self.port == port

    def embedded(self, address: Address) -> IPv4Address:
        shift = 128 - 32 - self.at
        return IPv4Address((int(address) >> shift) & 0xFFFFFFFF)

    def encode(self) -> str:
        extra = f" port={self.port}" if self.port is not None else ""
        extra += f" at={self.at}" if self.action == "embed" else ""
        return f"{self.action} {self.network}{extra}"


@dataclass(frozen=True)
class EgressPolicy:
    rules: tuple[Rule, ...]

    @classmethod
    def build(cls, allowed: Iterable[Network], resolvers: Iterable[Address] = ()) -> EgressPolicy:
        """Metadata first (never reachable), then the operator's networks, then the
        system's name servers on port 53 (name lookups must work), then the embedded IPv4
        forms, then the special-purpose table. Anything else is public and allowed."""
        rules = [Rule("deny", ip_network(n), "a cloud metadata address") for n in METADATA]
        rules += [Rule("allow", net, "an allowed network") for net in allowed]
        rules += [Rule("allow", ip_network(r), "a name server", port=53) for r in resolvers]
        rules += [
            Rule("embed", ip_network(n), f"{what} form", at=at) for n, at, what in EMBEDDED_IPV4
        ]
        rules += [Rule("deny", ip_network(n), label) for n, label in REFUSED]
        return cls(tuple(rules))

    def refusal(self, address: Address, port: int | None = None) -> str | None:
        """Why ``address`` (on ``port``) may not be reached, or None when it may."""
        for rule in self.rules:
            if not rule.matches(address, port):
                continue
            if rule.action == "allow":
                return None
            if rule.action == "deny":
                return f"{address} is {rule.label} ({rule.network})"
            inner = rule.embedded(address)
            why = self.refusal(inner, port)
            return None if why is None else f"{address} is the {rule.label} of {inner}; {why}"
        return None

    def encode(self) -> str:
        """The rules as the shim reads them: ``action network [port=N] [at=N]``, ';'-joined."""
        return ";".join(rule.encode() for rule in self.rules)
