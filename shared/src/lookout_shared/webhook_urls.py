"""Webhook target URLs: what the api accepts at creation and the notifier connects to.

Both judge every address the host resolves to with the egress policy (addresses.py); the
notifier does it again at each delivery and then connects to the very address it judged,
so a name that resolves elsewhere later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from lookout_shared.addresses import Address, EgressPolicy

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0


class RefusedUrl(ValueError):
    """The URL is malformed or leads somewhere the policy refuses; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise RefusedUrl("the URL must be http or https")
    if not parts.hostname:
        raise RefusedUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("the URL may not carry credentials; use the signing secret")
    return Target(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme])


async def resolve_allowed(policy: EgressPolicy, target: Target) -> list[Address]:
    """The addresses ``target`` resolves to, all allowed; RefusedUrl if any is not (a
    name with one internal address among public ones is refused as a whole)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM),
            RESOLVE_TIMEOUT_SECONDS,
        )
    except (TimeoutError, socket.gaierror):
        raise RefusedUrl(f"cannot resolve {target.host}") from None
    addresses: list[Address] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])  # strip an IPv6 zone
        why = policy.refusal(address, target.port)
        if why is not None:
            raise RefusedUrl(f"refused to deliver to {target.host}: {why}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RefusedUrl(f"cannot resolve {target.host}")
    return addresses
