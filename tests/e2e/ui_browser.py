"""Helpers of the operator page's browser tests: Debian's Chromium driven by Playwright, and
a tenant with cameras backed by local test videos."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from playwright.async_api import Browser, ConsoleMessage, Page

from .conftest import BIN, PASSWORD, System

# Never `playwright install`: the browser is Debian's, installed by scripts/install.sh.
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CAMERAS = [
    ("Front gate", "testsrc2", ["outdoor", "entrance"]),
    ("Loading dock", "smptebars", ["outdoor"]),
    ("Lobby", "mandelbrot", ["indoor"]),
    ("Parking north", "rgbtestsrc", ["outdoor", "parking"]),
    ("Server room", "testsrc", ["indoor"]),
    ("Warehouse aisle 3", "yuvtestsrc", ["indoor"]),
]
# Names that would run code if the page ever parsed data as HTML.
HOSTILE = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>"]


@dataclass
class Fleet:
    api: str
    tenant_id: str
    admin: str  # e-mail; every user's password is PASSWORD
    viewer: str
    root: dict[str, str]  # a superuser's Authorization header
    streams: dict[str, str] = field(default_factory=dict)  # name -> id


@dataclass
class Tab:
    page: Page
    errors: list[str]  # console errors and uncaught exceptions
    requests: list[str]  # every URL the page requested


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def make_tenant(
    system: System, client: httpx.AsyncClient, root: dict[str, str] | None = None
) -> Fleet:
    """A tenant of its own with an admin and a viewer (and a superuser, unless ``root``)."""
    if root is None:
        root_email = f"root-{uuid.uuid4().hex[:8]}@example.com"
        subprocess.run(
            [str(BIN / "lookout-api"), "create-superuser", root_email],
            env=system.env,
            check=True,
            capture_output=True,
        )
        root = await login(client, root_email)
    r = await client.post(
        "/api/v1/tenants", json={"name": f"ui-{uuid.uuid4().hex[:6]}"}, headers=root
    )
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    emails = {}
    for role in ("admin", "viewer"):
        emails[role] = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        r = await client.post(
            "/api/v1/users",
            json={
                "email": emails[role],
                "password": PASSWORD,
                "role": role,
                "tenant_id": tenant_id,
            },
            headers=root,
        )
        assert r.status_code == 201, r.text
    return Fleet(system.url("api"), tenant_id, emails["admin"], emails["viewer"], root)


def make_video(system: System, source: str) -> str:
    path = system.media / f"{source}.mp4"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             f"{source}=size=640x360:rate=5", "-t", "2", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
    return path.as_uri()


async def add_cameras(system: System, client: httpx.AsyncClient, fleet: Fleet) -> None:
    """The demo-like cameras and the hostile names, each with a first snapshot."""
    headers = await login(client, fleet.admin)
    named = [*CAMERAS, *((name, "testsrc", ["test"]) for name in HOSTILE)]
    jobs = []
    for name, source, tags in named:
        body = {"name": name, "url": make_video(system, source), "tags": tags}
        r = await client.post("/api/v1/streams", json=body, headers=headers)
        assert r.status_code == 201, r.text
        fleet.streams[name] = r.json()["id"]
        r = await client.post(f"/api/v1/streams/{fleet.streams[name]}/snapshots", headers=headers)
        assert r.status_code == 202, r.text
        jobs.append(r.json()["job_id"])

    async def all_done() -> bool:
        states = [
            (await client.get(f"/api/v1/jobs/{j}", headers=headers)).json()["status"] for j in jobs
        ]
        assert "failed" not in states, states
        return all(s == "succeeded" for s in states)

    await wait_for(all_done, 120, "the first snapshots")


async def open_page(browser: Browser, fleet: Fleet, email: str) -> Tab:
    """A fresh browser context on /ui, logged in as ``email``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    tab = Tab(page, [], [])

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            tab.errors.append(msg.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("websocket", lambda ws: tab.requests.append(ws.url))
    await page.goto(f"{fleet.api}/ui")
    await page.fill("input[name=username]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#shell", state="visible")
    await page.wait_for_selector('#conn[data-state="live"]', timeout=20_000)
    return tab


async def patch_stream(
    client: httpx.AsyncClient, headers: dict[str, str], stream_id: str, changes: dict[str, Any]
) -> None:
    """A change by another client, with the ETag it read first."""
    r = await client.get(f"/api/v1/streams/{stream_id}", headers=headers)
    r = await client.patch(
        f"/api/v1/streams/{stream_id}",
        json=changes,
        headers={**headers, "If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 200, r.text


def tile(stream_id: str) -> str:
    return f'.tile[data-id="{stream_id}"]'
