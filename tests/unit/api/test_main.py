"""The client address the login limits count by: the TCP peer's, or X-Forwarded-For's only
when the peer is a proxy listed in LOOKOUT_FORWARDED_ALLOW_IPS. Exercised through the
uvicorn application main.py configures, on loopback addresses (no connection is made)."""

from __future__ import annotations

import pytest
import uvicorn
from lookout_api.main import serve_options
from lookout_api.settings import ApiSettings
from starlette.types import Receive, Scope, Send

PROXY, CLIENT = "127.0.0.9", "127.0.0.55"


async def seen_address(allowed: str, peer: str) -> str:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = uvicorn.Config(app, **serve_options(ApiSettings(forwarded_allow_ips=allowed)))
    config.load()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/token",
        "query_string": b"",
        "headers": [(b"x-forwarded-for", CLIENT.encode())],
        "client": (peer, 40_000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(_: object) -> None:
        return None

    await config.loaded_app(scope, receive, send)
    return seen[0]


@pytest.mark.parametrize(
    ("allowed", "peer", "expected"),
    [
        ("", PROXY, PROXY),  # no proxy configured: a client cannot choose its address
        (PROXY, PROXY, CLIENT),  # the listed proxy names the client
        (PROXY, "127.0.0.8", "127.0.0.8"),  # anyone else's header is ignored
        ("127.0.0.0/29,127.0.0.9", PROXY, CLIENT),
    ],
)
async def test_forwarded_for_is_believed_only_from_listed_proxies(
    allowed: str, peer: str, expected: str
) -> None:
    assert await seen_address(allowed, peer) == expected
