"""The operator page at /ui in Debian's Chromium (headless, Playwright) against the four
services as processes: login, the fleet grid with images, live changes from the notifier,
roles, the CSP, recovery after a notifier restart, and first paint with 1,000 streams."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, async_playwright
from redis.asyncio import Redis

from .conftest import ROOT, System
from .ui_browser import (
    CAMERAS,
    CHROMIUM,
    LAUNCH_ARGS,
    Fleet,
    add_cameras,
    login,
    make_tenant,
    open_page,
    patch_stream,
    tile,
)

pytestmark = pytest.mark.e2e
OUT = ROOT / "var" / "ui"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
async def fleet(system: System) -> Fleet:
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=30) as client:
        fleet = await make_tenant(system, client)
        await add_cameras(system, client, fleet)
    OUT.mkdir(parents=True, exist_ok=True)
    return fleet


async def test_page_is_served_with_csp_etag_and_nosniff(fleet: Fleet) -> None:
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        r = await client.get("/ui")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "img-src 'self' blob:" in csp
        notifier = json.loads((await client.get("/ui/config.json")).text)["notifier_ws_url"]
        assert notifier.startswith("ws://127.0.0.1:") and notifier.endswith("/ws")
        assert notifier.removesuffix("/ws") in csp  # connect-src lets the page reach it
        assert r.headers["x-content-type-options"] == "nosniff"
        again = await client.get("/ui/app.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 200  # another file, another tag
        js = await client.get("/ui/app.js")
        assert js.headers["content-type"].startswith("text/javascript")
        cached = await client.get("/ui/app.js", headers={"If-None-Match": js.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""
        missing = await client.get("/ui/../settings.py")
        assert missing.status_code == 404


async def test_grid_shows_the_fleet_with_images_and_names_as_text(
    fleet: Fleet, browser: Browser
) -> None:
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.wait_for_function(
        "n => document.querySelectorAll('.tile[data-image=loaded]').length === n",
        arg=len(fleet.streams),
        timeout=30_000,
    )
    # Each tile shows latest.jpg through a signed URL at the tile's width (the sources are
    # 640 wide, never enlarged), without the Authorization header an <img> cannot send.
    shown = await page.eval_on_selector_all(
        ".tile img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    assert len(shown) == len(fleet.streams)
    for src, natural in shown:
        url = urlsplit(src)
        query = parse_qs(url.query)
        assert url.path.endswith("/latest.jpg") and not url.netloc, src
        assert query["exp"] and len(query["sig"][0]) == 64
        assert natural == min(int(query["width"][0]), 640), (src, natural)
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        alone = await client.get(shown[0][0])  # no credentials: the signature opens it
        assert alone.status_code == 200 and alone.headers["content-type"] == "image/jpeg"
    names = await page.eval_on_selector_all(".tile .name", "els => els.map(e => e.textContent)")
    assert set(names) == set(fleet.streams)  # hostile names shown as the characters they are
    await page.wait_for_function(
        "n => document.querySelector('[data-count=streams_total]')?.textContent === String(n)",
        arg=len(fleet.streams),
    )
    assert await page.evaluate("window.__xss") is None
    assert await page.evaluate("document.querySelectorAll('img[src=x], .tile script').length") == 0
    await page.screenshot(path=OUT / "grid.png")
    assert tab.errors == []

    # An inline script injected into the DOM does not run: the CSP has no 'unsafe-inline'.
    ran = await page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s);
                   return window.__inline === 1; }"""
    )
    assert ran is False
    assert any("Content Security Policy" in e for e in tab.errors)
    await page.context.close()


async def test_snapshot_taken_on_the_page_reaches_its_tile_without_reload(
    fleet: Fleet, browser: Browser
) -> None:
    stream_id = fleet.streams["Front gate"]
    grid = await open_page(browser, fleet, fleet.admin)
    await grid.page.wait_for_selector(f"{tile(stream_id)}[data-image=loaded]")
    before = await grid.page.get_attribute(f"{tile(stream_id)} img", "src")

    view = await open_page(browser, fleet, fleet.admin)
    await view.page.click(tile(stream_id))
    await view.page.wait_for_selector("#take")
    await view.page.evaluate(
        """() => { window.__jobs = [];
                   new MutationObserver(() => window.__jobs.push(document.querySelector('#job').dataset.status))
                     .observe(document.querySelector('#job'), {attributes: true}); }"""
    )
    await view.page.click("#take")
    await view.page.wait_for_selector('#job[data-status="succeeded"]', timeout=60_000)
    seen = await view.page.evaluate("window.__jobs")
    assert "running" in seen or "queued" in seen, seen  # progress came from the jobs: room

    await grid.page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).getAttribute('src') !== old",
        arg=[f"{tile(stream_id)} img", before],
        timeout=30_000,
    )
    await view.page.wait_for_function(
        "() => document.querySelectorAll('#history img[src]').length >= 2"
    )
    await view.page.screenshot(path=OUT / "stream.png", full_page=True)
    assert await view.page.locator(".url").count() == 1  # an admin sees the URL
    assert grid.errors == [] and view.errors == []
    await grid.page.context.close()
    await view.page.context.close()


async def test_rename_by_another_client_shows_live_without_polling(
    fleet: Fleet, browser: Browser
) -> None:
    stream_id = fleet.streams["Lobby"]
    tab = await open_page(browser, fleet, fleet.admin)
    await tab.page.wait_for_selector(tile(stream_id))
    listed = len([u for u in tab.requests if "/api/v1/streams?" in u])
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        headers = await login(client, fleet.admin)
        await patch_stream(client, headers, stream_id, {"name": "Lobby east"})
    await tab.page.wait_for_function(
        "sel => document.querySelector(sel).textContent === 'Lobby east'",
        arg=f"{tile(stream_id)} .name",
    )
    assert len([u for u in tab.requests if "/api/v1/streams?" in u]) == listed
    assert tab.errors == []
    await tab.page.context.close()


async def test_edit_conflict_shows_the_other_change_and_retries(
    fleet: Fleet, browser: Browser
) -> None:
    stream_id = fleet.streams["Parking north"]
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.goto(f"{fleet.api}/ui#/streams/{stream_id}")  # the hash route: no reload
    await page.wait_for_selector("#edit input[name=name]")
    await page.wait_for_function("() => document.querySelector('#edit [name=name]').value !== ''")
    await page.fill("#edit input[name=name]", "Parking N (mine)")
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        headers = await login(client, fleet.admin)
        await patch_stream(client, headers, stream_id, {"name": "Parking N (theirs)"})
        await page.click("#edit button[type=submit]")
        await page.wait_for_selector("#conflict:not([hidden])")
        assert "Parking N (theirs)" in await page.inner_text("#conflict")
        await page.click("#retry")
        await page.wait_for_function(
            "() => document.querySelector('#edit-status').textContent === 'Saved.'"
        )
        r = await client.get(f"/api/v1/streams/{stream_id}", headers=headers)
        assert r.json()["name"] == "Parking N (mine)"
    # The 412 itself is logged by Chromium as a failed resource load; nothing else is.
    assert [e for e in tab.errors if "412" not in e] == []
    await page.context.close()


async def test_operator_makes_a_stream_hot_from_its_edit_form(
    fleet: Fleet, browser: Browser
) -> None:
    stream_id = fleet.streams["Warehouse aisle 3"]
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.goto(f"{fleet.api}/ui#/streams/{stream_id}")
    await page.wait_for_function("() => document.querySelector('#edit [name=name]').value !== ''")
    assert await page.is_checked("#edit input[name=hot]") is False
    await page.check("#edit input[name=hot]")
    await page.select_option("#edit select[name=hot_mode]", "all")
    await page.click("#edit button[type=submit]")
    await page.wait_for_selector("#edit-status:has-text('Saved.')")
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        r = await client.get(f"/api/v1/streams/{stream_id}", headers=fleet.root)
        assert (r.json()["hot"], r.json()["hot_mode"]) == (True, "all")
        await patch_stream(client, fleet.root, stream_id, {"hot": False})
    # The change by another client shows in the form (stream.updated from the room).
    await page.wait_for_function("() => !document.querySelector('#edit [name=hot]').checked")
    assert tab.errors == []
    await page.context.close()


async def test_viewer_sees_no_urls_and_no_write_controls(fleet: Fleet, browser: Browser) -> None:
    tab = await open_page(browser, fleet, fleet.viewer)
    page = tab.page
    await page.wait_for_selector(".tile[data-image=loaded]")
    assert await page.is_hidden("#nav-ops")
    await page.click(tile(fleet.streams["Server room"]))
    await page.wait_for_selector("#history img")
    assert await page.locator("#take, #edit, .url").count() == 0
    assert "file:" not in await page.content()
    assert tab.errors == []
    await page.context.close()


async def test_token_stays_in_memory_and_logout_forgets_it(fleet: Fleet, browser: Browser) -> None:
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.wait_for_selector(".tile")
    await page.wait_for_selector('#conn[data-state="live"]')  # the WebSocket is open
    ws = [u for u in tab.requests if u.startswith("ws")]
    assert len(ws) == 1 and ws[0].endswith("/ws")  # the token went as a subprotocol
    assert not [u for u in tab.requests if "token=" in u or "eyJ" in u]
    stored = "localStorage.length + sessionStorage.length + document.cookie.length"
    assert await page.evaluate(stored) == 0
    await page.click("#logout")
    await page.wait_for_selector("#login-form", state="visible")
    assert await page.locator(".tile").count() == 0
    assert await page.evaluate("location.hash") == ""
    assert tab.errors == []
    await page.context.close()


async def test_grid_filters_by_search_status_and_tag(fleet: Fleet, browser: Browser) -> None:
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.wait_for_selector(".tile")
    shown = "n => document.querySelectorAll('.tile').length === n"
    await page.fill("input[name=q]", "dock")
    await page.wait_for_function(shown, arg=1)
    assert "dock" in (await page.inner_text(".tile .name")).lower()
    assert "q=dock" in await page.evaluate("location.hash")
    await page.fill("input[name=q]", "")
    await page.fill("input[name=tag]", "indoor")
    indoor = [n for n, _, tags in CAMERAS if "indoor" in tags]
    await page.wait_for_function(shown, arg=len(indoor))
    await page.fill("input[name=tag]", "")
    await page.select_option("select[name=status]", "error")
    await page.wait_for_selector("text=No streams match.")
    assert await page.locator(".tile").count() == 0
    assert tab.errors == []
    await page.context.close()


async def test_admin_sees_the_operations_panel(fleet: Fleet, browser: Browser) -> None:
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.click("#nav-ops")
    await page.wait_for_selector("#ops section")
    text = await page.inner_text("#ops")
    for expected in (
        "Health",
        "postgres",
        "Outbox",
        "unpublished",
        "Dead letters",
        "Quotas",
        "drift check",
    ):
        assert expected in text
    assert "snapshot.capture.dead" in text
    await page.screenshot(path=OUT / "ops.png")
    assert tab.errors == []
    await page.context.close()


async def test_page_recovers_after_the_notifier_restarts(
    system: System, fleet: Fleet, browser: Browser
) -> None:
    stream_id, other_id = fleet.streams["Loading dock"], fleet.streams["Warehouse aisle 3"]
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.wait_for_selector(tile(stream_id))
    system.stop("notifier")
    await page.wait_for_selector('#conn[data-state="down"]', timeout=20_000)
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        headers = await login(client, fleet.admin)
        # Missed while no notifier ran; and the room's history is gone too, so the page
        # must be told recovered: false and refetch.
        await patch_stream(client, headers, stream_id, {"name": "Loading dock B"})
        redis_prefix = system.env["LOOKOUT_REDIS_PREFIX"]
        room = f"tenant:{fleet.tenant_id}"
        redis = Redis.from_url(system.env["LOOKOUT_REDIS_URL"])
        await redis.delete(
            f"{redis_prefix}notifier:room:{room}", f"{redis_prefix}notifier:history:{room}"
        )
        await redis.aclose()
        system.start("notifier")
        system.wait_ready("notifier")
        await page.wait_for_selector(
            '#conn[data-state="live"][data-recoveries="1"]', timeout=30_000
        )
        await page.wait_for_function(
            "sel => document.querySelector(sel)?.textContent === 'Loading dock B'",
            arg=f"{tile(stream_id)} .name",
        )
        # And live again: the page subscribed anew.
        await patch_stream(client, headers, other_id, {"tags": ["indoor", "aisle"]})
        await page.wait_for_function(
            "sel => document.querySelector(sel)?.textContent.includes('#aisle')",
            arg=f"{tile(other_id)} .tags",
        )
    # Chromium reports the refused reconnection attempts while the notifier was down.
    assert [e for e in tab.errors if "WebSocket" not in e] == []
    await page.context.close()


async def test_failed_job_is_listed_live_with_a_link_to_its_stream(
    system: System, fleet: Fleet, browser: Browser
) -> None:
    tab = await open_page(browser, fleet, fleet.admin)
    page = tab.page
    await page.wait_for_selector(".tile")
    broken = system.media / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    async with httpx.AsyncClient(base_url=fleet.api) as client:
        headers = await login(client, fleet.admin)
        body = {"name": "Roof camera", "url": broken.as_uri()}
        r = await client.post("/api/v1/streams", json=body, headers=headers)
        assert r.status_code == 201, r.text
        stream_id = r.json()["id"]
        r = await client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=headers)
        assert r.status_code == 202, r.text
    link = f'#attention a[href="#/streams/{stream_id}"]'
    await page.wait_for_selector(link, timeout=60_000)  # from counts.changed, no reload
    await page.wait_for_selector("[data-count='jobs_status:failed']")
    await page.click(link)
    await page.wait_for_function(
        "() => document.querySelector('.stream-head .name')?.textContent.startsWith('Roof camera')"
    )
    assert [e for e in tab.errors if "404" not in e] == []  # it has no image: a 404
    await page.context.close()


async def test_first_paint_with_a_thousand_streams(
    system: System, pool: asyncpg.Pool, fleet: Fleet, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=30) as client:
        big = await make_tenant(system, client, fleet.root)
    now = datetime.now(UTC)
    rows = [
        (uuid.uuid4(), uuid.UUID(big.tenant_id), f"Camera {i:04d}", f"rtsp://cam{i}.example.com/live",
         "rtsp", ["bulk"], True, ("online", "pending", "error")[i % 3], now, now)
        for i in range(1000)
    ]  # fmt: skip
    await pool.copy_records_to_table(
        "streams",
        records=rows,
        columns=["id", "tenant_id", "name", "url", "kind", "tags", "enabled", "status", "created_at", "updated_at"],
    )  # fmt: skip
    tab = await open_page(browser, big, big.admin)
    page = tab.page
    await page.wait_for_function("() => performance.getEntriesByName('lookout:first-tiles').length")
    ms, own = await page.evaluate(
        """() => ['lookout:first-tiles', 'lookout:tiles-after-token']
                   .map(name => performance.getEntriesByName(name)[0].duration)"""
    )
    tiles = await page.locator(".tile").count()
    assert 0 < tiles < 100  # one page, not the thousand
    images = [u for u in tab.requests if "/snapshots/latest/image" in u]
    assert len(images) < tiles  # only the tiles near the viewport asked for an image
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await page.wait_for_function("n => document.querySelectorAll('.tile').length > n", arg=tiles)
    line = (
        f"first tiles with 1,000 streams: {ms:.0f} ms after the login was sent,"
        f" {own:.0f} ms after the token arrived ({tiles} tiles on the first page)"
    )
    print(line)
    (OUT / "first_paint.txt").write_text(line + "\n")
    await page.context.close()
