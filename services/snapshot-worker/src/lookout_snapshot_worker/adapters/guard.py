"""The UrlGuard port: resolve a network URL's host and refuse what the egress policy refuses.

This check fails a job early with a clear reason for the plain cases: literal internal
addresses and names that point inside. It cannot see what ffmpeg connects to afterwards
(playlist entries, redirects, a name resolved again differently): the egress shim loaded
into ffmpeg judges those with the same policy (adapters/egress.py).

Numeric host spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) need no
special case: they are resolved like ffmpeg resolves them (getaddrinfo) and the resulting
address is what is judged.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address
from urllib.parse import urlsplit

from lookout_shared.addresses import EgressPolicy
from lookout_shared.stream_urls import StreamUrl

from lookout_snapshot_worker.domain.failures import permanent, transient

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}


class AddressGuard:
    def __init__(self, policy: EgressPolicy, resolve_timeout: float = 5.0) -> None:
        self._policy = policy
        self._timeout = resolve_timeout

    async def check(self, url: StreamUrl) -> None:
        if url.kind == "file" or url.host is None:
            return  # parse_stream_url already confined file URLs to the media directory
        port = urlsplit(url.url).port or DEFAULT_PORTS.get(url.scheme, 0)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(url.host, port, type=socket.SOCK_STREAM), self._timeout
            )
        except TimeoutError:
            raise transient(f"resolving {url.host} timed out") from None
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise transient(f"resolving {url.host}: temporary failure") from None
            raise permanent(f"cannot resolve {url.host}") from None
        if not infos:
            raise permanent(f"cannot resolve {url.host}")
        for *_, sockaddr in infos:
            # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
            address = ip_address(str(sockaddr[0]).split("%", 1)[0])
            why = self._policy.refusal(address, port)
            if why is not None:
                raise permanent(f"refused to connect to {url.host}: {why}")
