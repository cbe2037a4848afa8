"""The operator page at ``/ui``: static files from ``lookout_api/ui`` (no build step).

The page is a plain client of the public REST, WebSocket and image APIs; nothing here gives
it more than any other client gets. The files are read once at import (they ship inside the
package) and answered with a strong ETag (a conditional request gets a 304) and
``Cache-Control: no-cache``, so a browser revalidates each time and a new release shows at
once. Every answer carries a strict Content-Security-Policy: scripts and styles only from
this origin (no inline code at all), images from here or ``blob:`` (snapshots are fetched
with the Authorization header and shown through object URLs), and connections to this
origin and the notifier. The notifier's address comes from ``LOOKOUT_PUBLIC_NOTIFIER_URL``
through ``/ui/config.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response

from lookout_api.entrypoints.deps import DepsDep
from lookout_api.settings import ApiSettings

ASSETS_DIR = Path(__file__).resolve().parents[1] / "ui"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CACHE_CONTROL = "no-cache"  # revalidate every time: a 304 is cheap, a release shows at once


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        return cls(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def load_assets(directory: Path) -> dict[str, Asset]:
    """Every servable file of ``directory`` by name: the only names ``/ui/{name}`` answers."""
    return {
        path.name: Asset.of(path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(directory.iterdir())
        if path.suffix in MEDIA_TYPES
    }


ASSETS = load_assets(ASSETS_DIR)


def notifier_origins(public_notifier_url: str) -> tuple[str, str]:
    """The notifier's http(s) origin and the ws(s) origin the page's WebSocket uses."""
    parts = urlsplit(public_notifier_url)  # an http(s) URL: the settings checked it
    ws = "wss" if parts.scheme == "https" else "ws"
    return f"{parts.scheme}://{parts.netloc}", f"{ws}://{parts.netloc}"


def content_security_policy(settings: ApiSettings) -> str:
    http, ws = notifier_origins(settings.public_notifier_url)
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob:",
            f"connect-src 'self' {http} {ws}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def page_config(settings: ApiSettings) -> Asset:
    """What the page cannot know by itself: where the notifier's WebSocket is."""
    _, ws = notifier_origins(settings.public_notifier_url)
    path = urlsplit(settings.public_notifier_url).path.rstrip("/")
    body = json.dumps({"notifier_ws_url": f"{ws}{path}/ws"}).encode()
    return Asset.of(body, "application/json")


def _none_match(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _answer(request: Request, settings: ApiSettings, asset: Asset) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": CACHE_CONTROL,
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if _none_match(request.headers.get("if-none-match"), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


router = APIRouter(include_in_schema=False)


@router.get("/ui")
async def page(request: Request, deps: DepsDep) -> Response:
    return _answer(request, deps.settings, ASSETS["index.html"])


@router.get("/ui/config.json")
async def config(request: Request, deps: DepsDep) -> Response:
    return _answer(request, deps.settings, page_config(deps.settings))


@router.get("/ui/{name}")
async def asset(request: Request, deps: DepsDep, name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise HTTPException(404, f"no file {name[:100]!r} in the operator page")
    return _answer(request, deps.settings, found)
